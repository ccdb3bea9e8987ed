// Node.js clients of a numident gateway: oauth4webapi (discovery, private_key_jwt, client
// credentials) and jose (assertions, remote JWKS). Prints one JSON object of what happened.
// Usage: node clients.mjs '{"issuer": URL, "clientId": ID, "jwk": PRIVATE_JWK, "line": E164}'
import { randomUUID } from "node:crypto";
import * as jose from "jose";
import * as oauth from "oauth4webapi";

const args = JSON.parse(process.argv[2]);
const insecure = { [oauth.allowInsecureRequests]: true }; // loopback http:// only
const issuer = new URL(args.issuer);
const alg = args.jwk.kty === "OKP" ? "EdDSA" : "ES256";
const key = await jose.importJWK(args.jwk, alg);
const out = {};

// oauth4webapi: OpenID discovery, then a client-credentials grant with private_key_jwt.
const as = await oauth.processDiscoveryResponse(
  issuer, await oauth.discoveryRequest(issuer, { algorithm: "oidc", ...insecure }));
out.issuer = as.issuer;
const client = { client_id: args.clientId };
const auth = oauth.PrivateKeyJwt({ key, kid: args.jwk.kid });
const granted = await oauth.processClientCredentialsResponse(as, client,
  await oauth.clientCredentialsGrantRequest(as, client, auth,
    new URLSearchParams({ scope: "identification" }), insecure));
out.oauth4webapi = { tokenType: granted.token_type, scope: granted.scope,
                     expiresIn: granted.expires_in };

// The API with that token.
const answer = await fetch(new URL("/identification/v1/requests", issuer), {
  method: "POST",
  headers: { authorization: `Bearer ${granted.access_token}`, "content-type": "application/json" },
  body: JSON.stringify({ phoneNumber: args.line, identificationCode: "node-1" }),
});
out.identification = { status: answer.status, result: (await answer.json()).result };

// jose: the gateway's key from its JWKS verifies the access token.
const keys = jose.createRemoteJWKSet(new URL(as.jwks_uri));
const verified = await jose.jwtVerify(granted.access_token, keys, { issuer: as.issuer });
out.joseVerified = { iss: verified.payload.iss, clientId: verified.payload.client_id,
                     alg: verified.protectedHeader.alg };

// jose: an EdDSA/ES256 assertion of its own, for the issuer as audience.
const assertion = await new jose.SignJWT({})
  .setProtectedHeader({ alg, kid: args.jwk.kid })
  .setIssuer(args.clientId).setSubject(args.clientId).setAudience(as.issuer)
  .setIssuedAt().setExpirationTime("5m").setJti(randomUUID())
  .sign(key);
const direct = await fetch(as.token_endpoint, {
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded" },
  body: new URLSearchParams({
    grant_type: "client_credentials", client_assertion: assertion,
    client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" }),
});
out.joseAssertion = { status: direct.status, tokenType: (await direct.json()).token_type,
                      alg: jose.decodeProtectedHeader(assertion).alg };

// oauth4webapi and a client the gateway does not know: an OAuth error it understands.
try {
  const stranger = { client_id: `${args.clientId}-unknown` };
  await oauth.processClientCredentialsResponse(as, stranger,
    await oauth.clientCredentialsGrantRequest(as, stranger, auth, new URLSearchParams(),
      insecure));
  out.refused = { error: null };
} catch (error) {
  out.refused = { kind: error.constructor.name, error: error.error ?? null,
                  status: error.status ?? null };
}

process.stdout.write(JSON.stringify(out));
