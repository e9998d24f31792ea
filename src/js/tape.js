// Builds a JS value from the tape of src/js/tape.rs in one pass (the tags are listed there).
// `tape` is a view of wasm memory: nothing here calls into wasm, and byte arrays are copied out.

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
