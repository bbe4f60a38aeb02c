// Encrypts standard input to the recipients given as arguments, writing the age file
// to standard output, with age-encryption (the TypeScript age implementation).
import { readFileSync } from "node:fs";
import { Encrypter } from "age-encryption";

const recipients = process.argv.slice(2);
if (recipients.length === 0) throw new Error("usage: node encrypt.mjs RECIPIENT... < in > out");
const e = new Encrypter();
for (const r of recipients) e.addRecipient(r);
process.stdout.write(await e.encrypt(readFileSync(0)));
