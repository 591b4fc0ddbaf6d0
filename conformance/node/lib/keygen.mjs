// Generates the FAPI 2.0 client's signing key pair (ES256) for run.sh:
// writes {private, public} JWKs to the file named by argv[2] (mode 0600) and
// prints the public JWKS, which run.sh registers through `idp client create --jwks`.
// The private key stays in the suite's temporary directory.
import { writeFileSync } from 'node:fs';
import { exportJWK, generateKeyPair } from 'jose';

const out = process.argv[2];
if (!out) {
  console.error('usage: node lib/keygen.mjs <private-key-file>');
  process.exit(2);
}
const kid = `conf-fapi-${Date.now().toString(36)}`;
const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
const pub = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
const priv = { ...(await exportJWK(privateKey)), kid, alg: 'ES256' };
writeFileSync(out, JSON.stringify({ private: priv, public: pub }), { mode: 0o600 });
process.stdout.write(JSON.stringify({ keys: [pub] }));
