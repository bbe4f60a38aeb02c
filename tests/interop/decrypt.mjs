// Decrypts the age file on standard input with the identities in the file given as the
// only argument (lines starting AGE-SECRET-KEY-), writing the plaintext to standard
// output: the TypeScript age implementation, age-encryption.
import { readFileSync } from "node:fs";
import { Decrypter } from "age-encryption";

const [identityFile] = process.argv.slice(2);
if (!identityFile) throw new Error("usage: node decrypt.mjs IDENTITY_FILE < in > out");
const d = new Decrypter();
for (const line of readFileSync(identityFile, "utf8").split("\n")) {
  if (line.startsWith("AGE-SECRET-KEY-")) d.addIdentity(line.trim());
}
const plain = await d.decrypt(readFileSync(0), "uint8array");
process.stdout.write(plain);
