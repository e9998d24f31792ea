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
function shapeOf(value) {
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
function copyBytes(value) {
  return new Uint8Array(value);
}

function isWellFormed(text) {
  if (typeof String.prototype.isWellFormed === 'function') return text.isWellFormed();
  return !/\p{Surrogate}/u.test(text);
}

const nativeBigintToString = BigInt.prototype.toString;
const nativeCall = Function.prototype.call;
const apply = Reflect.apply;
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

// A short description of an object that is not accepted: its constructor's name or its tag.
function describeObject(value) {
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

// ---- A caller value read in one pass into a tape (read by `read` in convert.rs, which lists the
// tags and refusal codes). The walk, its order and its budget are those convert.rs documents; a
// refusal replaces the whole tape with one refusal record. Functions and the exceptions that
// caused a refusal go to `side` (the tape holds their index).

const typedArrayProto = Object.getPrototypeOf(Uint8Array.prototype);
// A typed array's length from its internal slot (0 once its buffer is detached): no caller code.
const typedArrayLength = Object.getOwnPropertyDescriptor(typedArrayProto, 'length').get;
const utf8Encoder = new TextEncoder();
// Strings up to this many units are tried as ASCII first (one loop beats encodeInto's call).
const ASCII_TRY = 256;
// Byte arrays up to this long are copied by a loop (beats TypedArray.prototype.set's call).
const SMALL_COPY = 64;

// Why the value is refused (a code of convert.rs), the exception that caused it if one did (even
// `undefined`), and the path to it, innermost step first.
class Refused {
  constructor(code, detail, ...cause) {
    this.code = code;
    this.detail = detail;
    this.caused = cause.length > 0;
    this.cause = cause[0];
    this.steps = [];
  }

  at(step) {
    this.steps.push(step);
    return this;
  }
}

// The buffer of the last finished tape (up to 64 KiB), for the next one; a read that starts while
// another runs (from a getter) allocates its own.
let spare = null;
let spareView = null;

class TapeWriter {
  constructor(side, maxDepth, maxBytes) {
    this.side = side;
    this.maxDepth = maxDepth;
    this.maxBytes = maxBytes;
    this.used = 0;
    this.bytes = spare ?? new Uint8Array(1024);
    this.view = spare === null ? new DataView(this.bytes.buffer) : spareView;
    spare = null;
    this.at = 0;
  }

  // The tape so far; the buffer becomes the spare (the caller copies the tape before any other
  // read can start).
  finish() {
    if (this.bytes.length <= 65536) {
      spare = this.bytes;
      spareView = this.view;
    }
    return this.bytes.subarray(0, this.at);
  }

  reserve(n) {
    if (this.at + n <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < this.at + n) size *= 2;
    const bigger = new Uint8Array(size);
    bigger.set(this.bytes.subarray(0, this.at));
    this.bytes = bigger;
    this.view = new DataView(bigger.buffer);
  }

  charge(n) {
    this.used += n;
    if (this.used > this.maxBytes) throw new Refused(2, '');
  }

  tag(t) {
    this.reserve(1);
    this.bytes[this.at++] = t;
  }

  u32(n) {
    this.reserve(4);
    this.view.setUint32(this.at, n, true);
    this.at += 4;
  }

  // A string's UTF-8 length then its bytes (lone surrogates become U+FFFD: check first).
  utf8(value) {
    this.reserve(4 + value.length * 3);
    const start = this.at + 4;
    const bytes = this.bytes;
    const n = value.length;
    let at = start;
    if (n > 24) {
      at += utf8Encoder.encodeInto(value, bytes.subarray(at)).written;
    } else {
      let i = 0;
      for (; i < n; i++) {
        const c = value.charCodeAt(i);
        if (c >= 0x80) break;
        bytes[at++] = c;
      }
      if (i < n) at += utf8Encoder.encodeInto(value.slice(i), bytes.subarray(at)).written;
    }
    this.view.setUint32(this.at, at - start, true);
    this.at = at;
    return at - start;
  }

  // Writes `value` as `utf8` would if it is all ASCII (so well-formed, one byte per unit) and
  // returns true; else writes nothing and returns false.
  ascii(value) {
    const n = value.length;
    this.reserve(4 + n);
    const bytes = this.bytes;
    const start = this.at + 4;
    for (let i = 0; i < n; i++) {
      const c = value.charCodeAt(i);
      if (c >= 0x80) return false;
      bytes[start + i] = c;
    }
    this.view.setUint32(this.at, n, true);
    this.at = start + n;
    return true;
  }

  // Tag 2 and `text` as `ascii` writes it if it is 64 lowercase hex characters (a wallet id) and
  // returns true; else writes nothing and returns false.
  walletId(text) {
    if (text.length !== 64) return false;
    this.reserve(69);
    const bytes = this.bytes;
    const start = this.at + 5;
    for (let i = 0; i < 64; i++) {
      const c = text.charCodeAt(i);
      if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
      bytes[start + i] = c;
    }
    bytes[this.at] = 2;
    this.view.setUint32(this.at + 1, 64, true);
    this.at = start + 64;
    return true;
  }

  // A caller's string: well-formed, and charged its UTF-8 length.
  text(value) {
    if (value.length <= ASCII_TRY && this.used + value.length <= this.maxBytes && this.ascii(value)) {
      this.charge(value.length);
      return;
    }
    let wellFormed;
    try { wellFormed = isWellFormed(value); } catch (e) { throw new Refused(0, '', e); }
    if (!wellFormed) throw new Refused(1, '');
    // UTF-8 takes at least one byte per UTF-16 unit: a longer string cannot fit the budget.
    if (this.used + value.length > this.maxBytes) this.charge(value.length);
    this.charge(this.utf8(value));
  }

  value(value, depth) {
    this.charge(16);
    if (value === undefined) return this.tag(0);
    if (value === null) return this.tag(1);
    switch (typeof value) {
      case 'boolean': return this.tag(value ? 3 : 2);
      case 'number':
        this.reserve(9);
        this.bytes[this.at++] = 4;
        this.view.setFloat64(this.at, value, true);
        this.at += 8;
        return undefined;
      case 'bigint': {
        // `BigInt.prototype.toString.call(value)`, each property read once. When both are the
        // engine's own, nothing of the page runs: a bigint within i64 goes in as its value (the
        // number its text would spell).
        let text;
        try {
          const toString = BigInt.prototype.toString;
          const call = toString.call;
          if (toString === nativeBigintToString && call === nativeCall && value >= I64_MIN && value <= I64_MAX) {
            this.reserve(9);
            this.bytes[this.at++] = 12;
            this.view.setBigInt64(this.at, value, true);
            this.at += 8;
            return undefined;
          }
          text = apply(call, toString, [value]);
        } catch (e) { throw new Refused(3, '', e); }
        this.tag(5);
        this.utf8(text);
        return undefined;
      }
      case 'string':
        this.tag(6);
        return this.text(value);
      case 'symbol': throw new Refused(4, '');
      case 'function':
        this.tag(8);
        this.u32(this.side.push(value) - 1);
        return undefined;
      default: return this.object(value, depth);
    }
  }

  object(value, depth) {
    let shape;
    try { shape = shapeOf(value); } catch (e) { throw new Refused(5, '', e); }
    if (shape === 3) {
      // Not empty, so not detached: its bytes go straight into the tape.
      const n = typedArrayLength.call(value);
      if (n > 0) {
        this.charge(n);
        this.tag(7);
        this.u32(n);
        this.reserve(n);
        if (n <= SMALL_COPY) {
          // Indexing a typed array reads its buffer directly: no caller code.
          const bytes = this.bytes;
          let at = this.at;
          for (let i = 0; i < n; i++) bytes[at++] = value[i];
          this.at = at;
        } else {
          this.bytes.set(value, this.at);
          this.at += n;
        }
        return undefined;
      }
      let copy;
      try { copy = copyBytes(value); } catch (e) { throw new Refused(6, '', e); }
      this.charge(copy.length);
      this.tag(7);
      this.u32(copy.length);
      this.reserve(copy.length);
      this.bytes.set(copy, this.at);
      this.at += copy.length;
      return undefined;
    }
    if (shape === 0) {
      let name;
      try { name = describeObject(value); } catch { name = 'object'; }
      throw new Refused(7, typeof name === 'string' ? name : 'object');
    }
    if (depth >= this.maxDepth) throw new Refused(8, '');
    // The own keys as Reflect.ownKeys lists them (strings, then symbols) for an ordinary object,
    // in two calls that V8 runs faster than its one (a quarter of its time on an object in fast
    // mode, two thirds in dictionary mode). A Proxy's ownKeys trap runs twice, and a symbol it
    // lists is refused after the string keys.
    let keys;
    let symbols;
    try {
      keys = Object.getOwnPropertyNames(value);
      symbols = Object.getOwnPropertySymbols(value).length;
    } catch (e) { throw new Refused(9, '', e); }
    return shape === 2 ? this.list(value, keys, symbols, depth) : this.map(value, keys, symbols, depth);
  }

  // `keys`: the string keys; `symbols`: how many symbol keys follow them (refused once the string
  // keys' values are read, where Reflect.ownKeys order meets the first).
  map(value, keys, symbols, depth) {
    this.tag(10);
    this.u32(keys.length);
    for (const key of keys) {
      try { this.text(key); } catch (e) { throw inKey(e); }
      let item;
      try { item = value[key]; } catch (e) { throw new Refused(11, '', e).at(key); }
      try { this.value(item, depth + 1); } catch (e) { throw stepped(e, key); }
    }
    if (symbols > 0) throw new Refused(10, '');
  }

  list(value, keys, symbols, depth) {
    let length;
    try { length = value.length; } catch (e) { throw new Refused(13, '', e); }
    if (typeof length !== 'number' || !Number.isInteger(length) || length < 0 || length > 0xffffffff) {
      throw new Refused(14, '');
    }
    if (symbols > 0 || keys.length !== length + 1 || keys[keys.length - 1] !== 'length') throw new Refused(15, '');
    this.tag(9);
    this.u32(length);
    for (let i = 0; i < length; i++) {
      let item;
      try { item = value[i]; } catch (e) { throw new Refused(11, '', e).at(i); }
      try { this.value(item, depth + 1); } catch (e) { throw stepped(e, i); }
    }
  }
}

// Adds a step to a refusal on its way out; anything else is our own bug, passed on.
function stepped(error, step) {
  if (error instanceof Refused) return error.at(step);
  throw error;
}

// A refusal of a key rather than of a value (its message says so).
function inKey(error) {
  if (!(error instanceof Refused)) throw error;
  error.code |= 0x80;
  return error;
}

// The tape of `value`; never throws for anything the caller's value does.
export function readTape(value, side, maxDepth, maxBytes) {
  const writer = new TapeWriter(side, maxDepth, maxBytes);
  try {
    writer.value(value, 0);
    return writer.finish();
  } catch (error) {
    if (!(error instanceof Refused)) throw error;
    const out = new TapeWriter(side, 0, Infinity);
    refusal(out, error, side);
    return out.finish();
  }
}

// The refusal record of `error` (tag 11, see convert.rs).
function refusal(out, error, side) {
  out.tag(11);
  out.tag(error.code);
  out.utf8(error.detail);
  out.u32(error.caused ? side.push(error.cause) - 1 : 0xffffffff);
  out.u32(error.steps.length);
  for (const step of error.steps) {
    if (typeof step === 'number') {
      out.tag(1);
      out.u32(step);
    } else {
      out.tag(0);
      out.utf8(step);
    }
  }
}

// ---- `store`'s two arguments in one call (read by `read_changes` in convert.rs): the walletId,
// then the changes as `readTape` writes them, into wasm memory at `ptr` when the tape fits in `cap`
// bytes. The id comes first as a tag: 0 not a string; 1 a string that is not 64 lowercase hex
// characters, then its UTF-8 (lone surrogates as U+FFFD, as wasm-bindgen passes strings), and the
// changes are not read (so none of their getters run); 2 a wallet id, then its 64 characters and
// the changes' tape. The functions and causes the tape refers to are kept for `takeSide`; a tape
// longer than `cap` for `takeTape`.

let memory = null;
// A view of all of wasm memory, made again once growth detached its buffer (length 0).
let memoryBytes = new Uint8Array(0);
let lastSide = [];
let pendingTape = null;

// The module's wasm memory (set once, before the first `readChanges`).
export function setMemory(wasmMemory) {
  memory = wasmMemory;
}

function wasmBytes() {
  if (memoryBytes.length === 0) memoryBytes = new Uint8Array(memory.buffer);
  return memoryBytes;
}

// The tape's length; never throws for anything the caller's values do.
export function readChanges(walletId, changes, maxDepth, maxBytes, ptr, cap) {
  const side = [];
  const writer = new TapeWriter(side, maxDepth, maxBytes);
  if (typeof walletId !== 'string') {
    writer.tag(0);
  } else if (!writer.walletId(walletId)) {
    writer.tag(1);
    writer.utf8(walletId);
  } else {
    const start = writer.at;
    try {
      writer.value(changes, 0);
    } catch (error) {
      if (!(error instanceof Refused)) throw error;
      writer.at = start;
      refusal(writer, error, side);
    }
  }
  const tape = writer.finish();
  const n = tape.length;
  lastSide = side;
  // The view is checked now: a getter that called into wasm may have grown its memory.
  if (n <= cap) wasmBytes().set(tape, ptr);
  else pendingTape = tape.slice();
  return n;
}

// The last tape `readChanges` could not place, into wasm memory at `ptr` (room for all of it).
export function takeTape(ptr) {
  wasmBytes().set(pendingTape, ptr);
  pendingTape = null;
}

// The functions and causes of the last `readChanges` tape.
export function takeSide() {
  const side = lastSide;
  lastSide = [];
  return side;
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
