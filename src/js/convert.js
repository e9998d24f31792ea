// Reads of caller values for src/js/convert.rs. Every function here may throw (a getter, a Proxy
// trap, a detached buffer): each is imported with `catch`, so the exception comes back to Rust as
// an `Err` and never unwinds through wasm frames.

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

