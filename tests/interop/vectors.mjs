// Writes every C2SP age test vector (the cctv-age package) into the directory given
// as the only argument, one file per vector, named as the package names it. A
// `compressed: zlib` vector is written inflated, without that header line, so the
// reader needs no zlib. Prints how many it wrote.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { inflateSync } from "node:zlib";
import * as vectors from "cctv-age";

const [dir] = process.argv.slice(2);
if (!dir) throw new Error("usage: node vectors.mjs DIR");
mkdirSync(dir, { recursive: true });
let count = 0;
for (const [name, bytes] of Object.entries(vectors)) {
  if (!(bytes instanceof Uint8Array)) continue;
  const data = Buffer.from(bytes);
  const split = data.indexOf("\n\n");
  if (split < 0) throw new Error(`${name}: no blank line after the header`);
  const header = data.subarray(0, split).toString("utf8").split("\n");
  let body = data.subarray(split + 2);
  const compressed = header.indexOf("compressed: zlib");
  if (compressed >= 0) {
    header.splice(compressed, 1);
    body = inflateSync(body);
  }
  if (header.some((line) => line.startsWith("compressed: "))) {
    throw new Error(`${name}: unknown compression`);
  }
  writeFileSync(join(dir, name), Buffer.concat([Buffer.from(header.join("\n") + "\n\n"), body]));
  count++;
}
console.log(count);
