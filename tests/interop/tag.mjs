// The hardware-key recipient types, as age-encryption sees them. age-encryption (like
// every software age) can encrypt to age1tag1… and age1tagpq1… but has no identity
// for them: the secret keys live in hardware plugins. So this script:
//   node tag.mjs recipients
//     makes a P-256 key and an ML-KEM-768 key, encodes an age1tag1… and an
//     age1tagpq1… recipient the way age-encryption parses them, checks that
//     age-encryption encrypts to both, and prints one JSON object: each recipient with
//     the stanza age-encryption made for it (type, arguments, body length);
//   node tag.mjs tags RECIPIENT < STANZA_ARGS_JSON
//     prints the tag the spec's formula gives for each [type, tag, enc] read from
//     standard input, computed here with node:crypto, for a recipient string.
import { readFileSync } from "node:fs";
import { createECDH, createHash, createHmac } from "node:crypto";
import { Encrypter, Decrypter } from "age-encryption";
import { bech32 } from "@scure/base";
import { ml_kem768 } from "@noble/post-quantum/ml-kem.js";

const b64 = (bytes) => Buffer.from(bytes).toString("base64").replace(/=+$/, "");
const unb64 = (s) => Buffer.from(s, "base64");
const encode = (prefix, bytes) => bech32.encode(prefix, bech32.toWords(bytes), false);
const decode = (s) => Buffer.from(bech32.fromWords(bech32.decode(s, false).words));

function stanzasOf(file) {
  // The header's stanza lines: "-> type args…" then base64 body lines.
  const text = Buffer.from(file).toString("latin1");
  const header = text.slice(0, text.indexOf("\n--- "));
  return header
    .split("\n-> ")
    .slice(1)
    .map((block) => {
      const [args, ...body] = block.split("\n");
      const [type, ...rest] = args.split(" ");
      return { type, args: rest, body_len: unb64(body.join("")).length };
    });
}

const [mode, recipient] = process.argv.slice(2);
if (mode === "recipients") {
  const ecdh = createECDH("prime256v1");
  ecdh.generateKeys();
  const tag = encode("age1tag", ecdh.getPublicKey(null, "compressed"));
  const { publicKey } = ml_kem768.keygen();
  const tagpq = encode(
    "age1tagpq",
    Buffer.concat([Buffer.from(publicKey), ecdh.getPublicKey(null, "uncompressed")]),
  );
  const out = {};
  for (const [name, r] of [["tag", tag], ["tagpq", tagpq]]) {
    const e = new Encrypter();
    e.addRecipient(r);
    const file = await e.encrypt("x");
    out[name] = { recipient: r, stanzas: stanzasOf(file) };
  }
  // No software identity exists for these types: say so by showing the refusal.
  try {
    new Decrypter().addIdentity("AGE-PLUGIN-TAG-1QQQQ");
    out.software_identity = "accepted";
  } catch (err) {
    out.software_identity = `refused: ${err.message}`;
  }
  console.log(JSON.stringify(out));
} else if (mode === "tags") {
  const bytes = decode(recipient);
  const stanzas = JSON.parse(readFileSync(0, "utf8"));
  const tags = stanzas.map(([type, , enc]) => {
    // age.md: tag = HKDF-Extract-SHA-256(ikm = enc || SHA-256(point)[:4], salt = label)[:4]
    // with the compressed point for p256tag, the uncompressed one (recipient[1184:]) for
    // mlkem768p256tag.
    const point = type === "p256tag" ? bytes : bytes.subarray(1184);
    const hash = createHash("sha256").update(point).digest().subarray(0, 4);
    const label = `age-encryption.org/${type}`;
    const prk = createHmac("sha256", label).update(Buffer.concat([unb64(enc), hash])).digest();
    return b64(prk.subarray(0, 4));
  });
  console.log(JSON.stringify(tags));
} else {
  throw new Error("usage: node tag.mjs recipients | tags RECIPIENT < STANZAS_JSON");
}
