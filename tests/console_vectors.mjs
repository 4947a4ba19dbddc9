// Run by tests/test_console_msgpack.py:
//   node tests/console_vectors.mjs <file URL of msgpack.js> <tests/vectors dir> <types the page sends, comma-separated>
// Prints one JSON line {failures, messages}.
import { readFileSync } from "node:fs";

const [moduleUrl, vectors, sends] = process.argv.slice(2);
const { decode, encode, float, Float64 } = await import(moduleUrl);
const pageSends = sends.split(",");

const read = (name) => JSON.parse(readFileSync(`${vectors}/${name}`, "utf8"));
const hex = (data) => Buffer.from(data).toString("hex");
const bytes = (text) => new Uint8Array(Buffer.from(text, "hex"));

// a vector's tagged value as the page holds it ($int: BigInt, $bin: bytes, $float: float();
// fields named in `floats` are floats too); unset (null) fields are left out
function untag(v, floats = new Set(), key = null) {
  if (Array.isArray(v)) return v.map((x) => untag(x, floats));
  if (v && typeof v === "object") {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === "$int") return BigInt(v.$int);
    if (keys.length === 1 && keys[0] === "$bin") return bytes(v.$bin);
    if (keys.length === 1 && keys[0] === "$float") return float(v.$float);
    const fields = Object.entries(v).filter(([, x]) => x !== null);
    return Object.fromEntries(fields.map(([k, x]) => [k, untag(x, floats, k)]));
  }
  if (typeof v === "number" && floats.has(key)) return float(v);
  return v;
}

// comparable text of a value: map keys in one order, floats as the plain numbers decoding gives
function plain(value) {
  return JSON.stringify(value, (k, x) => {
    if (typeof x === "bigint") return "big:" + x;
    if (x instanceof Uint8Array) return "bin:" + hex(x);
    if (x instanceof Float64) return x.value;
    if (x && typeof x === "object" && !Array.isArray(x)) {
      return Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return x;
  });
}

const failures = [];
const check = (ok, what) => {
  if (!ok) failures.push(what);
};

for (const c of read("codec.json").cases) {
  let value;
  try {
    value = decode(bytes(c.hex));
  } catch (error) {
    failures.push(`${c.name}: ${error.message}`);
    continue;
  }
  const expected = untag(c.value);
  check(plain(value) === plain(expected), `${c.name}: decoded ${plain(value)}`);
  check(hex(encode(expected)) === c.canonical_hex, `${c.name}: encoded ${hex(encode(expected))}`);
}
for (const c of read("invalid.json").cases) {
  let threw = false;
  try {
    decode(bytes(c.hex));
  } catch {
    threw = true;
  }
  check(threw, `${c.name}: accepted`);
}
const canonical = read("canonical.json");
const floats = new Set(canonical.float_fields);
for (const c of canonical.cases) {
  check(plain(decode(bytes(c.hex))) === plain(untag(c.message)), `${c.name}: decoded differently`);
  if (pageSends.includes(c.message.type)) {
    check(hex(encode(untag(c.message, floats))) === c.hex, `${c.name}: not canonical`);
  }
}
let messages = 0;
for (const type of read("index.json").messages.filter((t) => pageSends.includes(t))) {
  const raw = hex(readFileSync(`${vectors}/${type}.msgpack`));
  const encoded = hex(encode(untag(read(`${type}.json`), floats)));
  check(encoded === raw, `${type}.msgpack: encoded ${encoded}`);
  check(plain(decode(bytes(raw))) === plain(untag(read(`${type}.json`))), `${type}.msgpack: decoded differently`);
  messages += 1;
}
console.log(JSON.stringify({ failures, messages }));
