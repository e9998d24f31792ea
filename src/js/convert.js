// Conversions for src/js: reads of caller values for convert.rs, and (at the end) load's values
// built from the tape of tape.rs. Every reader may throw (a getter, a Proxy trap, a detached
// buffer): each is imported with `catch`, so the exception comes back to Rust as an `Err` and never
// unwinds through wasm frames.

const typedArrayName = Object.getOwnPropertyDescriptor(
  Object.getPrototypeOf(Uint8Array.prototype),
  Symbol.toStringTag,
).get;
const objectPrototype = Object.prototype;

// 0: another object (class instance, Map, Date, boxed primitive, other typed array ...),
// 1: a plain object (prototype Object.prototype of any realm, or null), 2: an array (prototype
// Array.prototype of any realm),
// 3: a Uint8Array (of any realm: recognised by its internal type tag, not by instanceof).
export function shapeOf(value) {
  if (ArrayBuffer.isView(value)) return typedArrayName.call(value) === 'Uint8Array' ? 3 : 0;
  if (Array.isArray(value)) {
    // Array.prototype of any realm is itself an array; a subclass's prototype is not.
    const proto = Reflect.getPrototypeOf(value);
    return proto !== null && Array.isArray(proto) ? 2 : 0;
  }
  const proto = Reflect.getPrototypeOf(value);
  if (proto === null || proto === objectPrototype) return 1;
  // Another realm's Object.prototype: the end of its chain, its constructor named "Object".
  if (Reflect.getPrototypeOf(proto) === null) {
    const ctor = Reflect.getOwnPropertyDescriptor(proto, 'constructor');
    if (ctor && typeof ctor.value === 'function' && ctor.value.name === 'Object'
        && Object.prototype.toString.call(value) === '[object Object]') return 1;
  }
  return 0;
}

// A copy of a Uint8Array's bytes (reads internal slots only; throws for a detached buffer).
export function copyBytes(value) {
  return new Uint8Array(value);
}

export function isWellFormed(text) {
  if (typeof String.prototype.isWellFormed === 'function') return text.isWellFormed();
  return !/\p{Surrogate}/u.test(text);
}

export function bigintText(value) {
  return BigInt.prototype.toString.call(value);
}

// A short description of an object that is not accepted: its constructor's name or its tag.
export function describeObject(value) {
  const tag = Object.prototype.toString.call(value).slice(8, -1);
  const proto = Reflect.getPrototypeOf(value);
  const ctor = proto && Reflect.getOwnPropertyDescriptor(proto, 'constructor');
  const name = ctor && typeof ctor.value === 'function' ? ctor.value.name : '';
  return name || tag;
}

// A promise for whatever `init` returned: never throws (Promise.resolve reads `constructor`).
export function settle(value) {
  return new Promise((resolve) => resolve(value));
}

// ---- Our results: load's values from the tape of src/js/tape.rs, built in one pass (the tags are
// listed there). `tape` is a view of wasm memory: nothing here calls into wasm, and byte arrays are
// copied out. (One module with the readers above: every snippet file is one more request when the
// package loads.)

const utf8 = new TextDecoder('utf-8', { ignoreBOM: true, fatal: true });

// An own enumerable property, also for "__proto__" (which assignment would take as the prototype).
function setOwn(object, key, value) {
  if (key === '__proto__') {
    Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    object[key] = value;
  }
}

export function buildValue(tape, names) {
  const view = new DataView(tape.buffer, tape.byteOffset, tape.byteLength);
  let at = 0;
  const u32 = () => {
    const n = view.getUint32(at, true);
    at += 4;
    return n;
  };
  const string = () => {
    const start = at + 4;
    at = start + view.getUint32(at, true);
    return utf8.decode(tape.subarray(start, at));
  };
  const value = () => {
    switch (tape[at++]) {
      case 0: return null;
      case 1: return false;
      case 2: return true;
      case 3: { const n = view.getFloat64(at, true); at += 8; return n; }
      case 4: { const n = view.getBigUint64(at, true); at += 8; return n; }
      case 5: { const n = view.getBigInt64(at, true); at += 8; return n; }
      case 6: return string();
      case 7: {
        const start = at + 4;
        at = start + view.getUint32(at, true);
        return tape.slice(start, at);
      }
      case 8: {
        const list = [];
        for (let n = u32(); n > 0; n--) list.push(value());
        return list;
      }
      case 9: {
        const object = {};
        for (let n = u32(); n > 0; n--) {
          const key = tape[at++] === 10 ? names[u32()] : string();
          setOwn(object, key, value());
        }
        return object;
      }
      default: throw new Error(`wallet-persist: bad tape tag ${tape[at - 1]} at ${at - 1}`);
    }
  };
  return value();
}
