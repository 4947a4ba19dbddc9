// A small msgpack encoder and decoder for the console page (what npcbridge's protocol uses:
// nil, booleans, integers, float64, UTF-8 strings, binary, arrays, maps with string keys), in
// the protocol's canonical form: integers in their smallest form, floats always float64, map
// keys sorted by their UTF-8 bytes. JavaScript has one number type, so a whole number meant as
// a float (a temperature of 1.0) is wrapped: float(1). 64-bit integers beyond 2^53 are BigInt.
// An ES module: import { encode, decode, float }.
const utf8 = new TextEncoder();
const utf8d = new TextDecoder("utf-8", { fatal: true });

// a number that is written as float64 even when it is whole
export class Float64 {
  constructor(value) {
    this.value = Number(value);
  }
}
export const float = (value) => new Float64(value);

// UTF-8 byte order is code point order (JavaScript's own sort compares UTF-16 units)
function byCodePoint(a, b) {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d) return d;
  }
  return x.length - y.length;
}

export function encode(value) {
  const out = [];
  const push = (...bytes) => { for (const b of bytes) out.push(b & 0xff); };
  const pushBytes = (bytes) => { for (const b of bytes) out.push(b); };
  // big-endian, two's complement for negative values
  const be = (n, size) => { const big = BigInt(n); for (let i = size - 1; i >= 0; i--) push(Number((big >> BigInt(8 * i)) & 0xffn)); };
  function int(n) {
    const v = BigInt(n);
    if (v >= 0n) {
      if (v < 0x80n) push(Number(v));
      else if (v < 0x100n) { push(0xcc); be(v, 1); }
      else if (v < 0x10000n) { push(0xcd); be(v, 2); }
      else if (v < 0x100000000n) { push(0xce); be(v, 4); }
      else if (v < 1n << 64n) { push(0xcf); be(v, 8); }
      else throw new RangeError("msgpack: integer beyond uint64");
    } else if (v >= -32n) push(Number(v));
    else if (v >= -0x80n) { push(0xd0); be(v, 1); }
    else if (v >= -0x8000n) { push(0xd1); be(v, 2); }
    else if (v >= -0x80000000n) { push(0xd2); be(v, 4); }
    else if (v >= -(1n << 63n)) { push(0xd3); be(v, 8); }
    else throw new RangeError("msgpack: integer beyond int64");
  }
  function float64(x) {
    const d = new DataView(new ArrayBuffer(8));
    d.setFloat64(0, x);
    push(0xcb);
    pushBytes(new Uint8Array(d.buffer));
  }
  function header(len, fix, fixMax, c8, c16, c32) {
    if (len <= fixMax && fix !== null) push(fix | len);
    else if (c8 !== null && len < 0x100) push(c8, len);
    else if (len < 0x10000) { push(c16); be(len, 2); }
    else { push(c32); be(len, 4); }
  }
  function walk(v) {
    if (v === null || v === undefined) push(0xc0);
    else if (v === false) push(0xc2);
    else if (v === true) push(0xc3);
    else if (typeof v === "bigint") int(v);
    else if (typeof v === "number") {
      if (Number.isSafeInteger(v)) int(v);
      else float64(v);
    } else if (v instanceof Float64) float64(v.value);
    else if (typeof v === "string") {
      const bytes = utf8.encode(v);
      header(bytes.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
      pushBytes(bytes);
    } else if (v instanceof Uint8Array) {
      header(v.length, null, -1, 0xc4, 0xc5, 0xc6);
      pushBytes(v);
    } else if (Array.isArray(v)) {
      header(v.length, 0x90, 15, null, 0xdc, 0xdd);
      v.forEach(walk);
    } else if (typeof v === "object") {
      // an undefined field is an unset one: left out
      const keys = Object.keys(v).filter((k) => v[k] !== undefined).sort(byCodePoint);
      header(keys.length, 0x80, 15, null, 0xde, 0xdf);
      for (const k of keys) { walk(k); walk(v[k]); }
    } else throw new TypeError("msgpack: cannot encode a " + typeof v);
  }
  walk(value);
  return new Uint8Array(out);
}

// a 64-bit integer as a number when it is exact, else as a BigInt
const safe = (big) => (big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big);

export function decode(buffer) {
  const bytes = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  const need = (n) => { if (pos + n > bytes.length) throw new RangeError("msgpack: truncated"); };
  const u = (size) => {
    need(size);
    const p = pos; pos += size;
    switch (size) {
      case 1: return view.getUint8(p);
      case 2: return view.getUint16(p);
      case 4: return view.getUint32(p);
      default: return safe(view.getBigUint64(p));
    }
  };
  const s = (size) => {
    need(size);
    const p = pos; pos += size;
    switch (size) {
      case 1: return view.getInt8(p);
      case 2: return view.getInt16(p);
      case 4: return view.getInt32(p);
      default: return safe(view.getBigInt64(p));
    }
  };
  const str = (len) => { need(len); const t = utf8d.decode(bytes.subarray(pos, pos + len)); pos += len; return t; };
  const bin = (len) => { need(len); const b = bytes.slice(pos, pos + len); pos += len; return b; };
  const arr = (len) => { const a = []; for (let i = 0; i < len; i++) a.push(read()); return a; };
  const map = (len) => {
    const m = {};
    for (let i = 0; i < len; i++) {
      const k = read();
      if (typeof k !== "string") throw new TypeError("msgpack: a map key is not a string");
      // defined, not assigned: a key such as "__proto__" stays an ordinary field
      Object.defineProperty(m, k, { value: read(), enumerable: true, writable: true, configurable: true });
    }
    return m;
  };
  function read() {
    const b = u(1);
    if (b < 0x80) return b;
    if (b >= 0xe0) return b - 0x100;
    if ((b & 0xf0) === 0x80) return map(b & 0x0f);
    if ((b & 0xf0) === 0x90) return arr(b & 0x0f);
    if ((b & 0xe0) === 0xa0) return str(b & 0x1f);
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return bin(u(1));
      case 0xc5: return bin(u(2));
      case 0xc6: return bin(u(4));
      case 0xca: { need(4); const f = view.getFloat32(pos); pos += 4; return f; }
      case 0xcb: { need(8); const f = view.getFloat64(pos); pos += 8; return f; }
      case 0xcc: return u(1);
      case 0xcd: return u(2);
      case 0xce: return u(4);
      case 0xcf: return u(8);
      case 0xd0: return s(1);
      case 0xd1: return s(2);
      case 0xd2: return s(4);
      case 0xd3: return s(8);
      case 0xd9: return str(u(1));
      case 0xda: return str(u(2));
      case 0xdb: return str(u(4));
      case 0xdc: return arr(u(2));
      case 0xdd: return arr(u(4));
      case 0xde: return map(u(2));
      case 0xdf: return map(u(4));
      default: throw new TypeError("msgpack: unsupported type byte 0x" + b.toString(16));
    }
  }
  const value = read();
  if (pos !== bytes.length) throw new RangeError("msgpack: trailing bytes");
  return value;
}
