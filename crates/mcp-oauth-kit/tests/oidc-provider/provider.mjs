// A real OpenID provider (node-oidc-provider, OpenID Certified) for mcp-oauth-kit's tests.
// Started by tests/oidc/mod.rs; listens on 127.0.0.1 only. Configuration from the environment:
//
//   OIDC_PORT            port to listen on (0: any free port; the chosen one is printed)
//   OIDC_RESOURCE        the MCP resource (audience) that access tokens are minted for
//   OIDC_CLIENT_ID       a confidential client (client_secret_basic), with
//   OIDC_CLIENT_SECRET   its secret; `${OIDC_CLIENT_ID}-opaque` gets opaque access tokens
//   OIDC_REDIRECT_URI    the client's redirect URI ({PUBLIC_URL}/oauth/callback)
//   OIDC_KID             the key id of the signing keys (restart with another to rotate)
//   OIDC_KEYS_OUT        file to write the private signing keys to (PKCS#8, base64 DER), so
//                        that tests can forge tokens with the provider's own key
//   OIDC_ACCESS_TTL      access-token lifetime in seconds (default 300)
//
// On start it prints `OIDC_PROVIDER_PORT=<port>` on stdout.
//
// For the upstream sign-in tests, `GET /test/tamper?mode=…` makes the next token response's
// id_token a forgery, signed with the provider's own RSA key unless the mode says otherwise:
// `wrong_nonce`, `wrong_iss`, `wrong_aud`, `expired`, `alg_none` (unsigned). The mode is used
// once.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';

import Provider, { errors } from 'oidc-provider';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) {
    console.error(`${name} is required`);
    process.exit(2);
  }
  return value;
};

const port = Number(env('OIDC_PORT', '0'));
const resource = env('OIDC_RESOURCE');
const clientId = env('OIDC_CLIENT_ID');
const clientSecret = env('OIDC_CLIENT_SECRET');
const redirectUri = env('OIDC_REDIRECT_URI');
const kid = env('OIDC_KID', 'key-1');
const keysOut = process.env.OIDC_KEYS_OUT;
const accessTtl = Number(env('OIDC_ACCESS_TTL', '300'));

// A second resource, so that a token for another audience comes from the real provider too.
const OTHER_RESOURCE = 'https://other.example.com/mcp';

// The test account, and what a client-credentials token says about its client (a service
// account): name, email and groups either way.
const ACCOUNTS = {
  'u-carol': {
    sub: 'u-carol',
    preferred_username: 'carol',
    name: 'Carol Example',
    email: 'carol@example.com',
    email_verified: true,
    groups: ['staff', 'mcp-users'],
  },
  // A second person, for the tests of a provider session that changed hands.
  'u-dave': {
    sub: 'u-dave',
    preferred_username: 'dave',
    name: 'Dave Example',
    email: 'dave@example.com',
    email_verified: true,
    groups: ['staff'],
  },
};
const SERVICE_ACCOUNT = {
  preferred_username: 'reporting-bot',
  name: 'Reporting Bot',
  email: 'reporting-bot@example.com',
  groups: ['robots'],
};

// An EC key (ES256, access tokens) and an RSA key (RS256, ID tokens), both under `kid`.
const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwks = {
  keys: [
    { ...ec.privateKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' },
    { ...rsa.privateKey.export({ format: 'jwk' }), kid: `${kid}-rsa`, alg: 'RS256', use: 'sig' },
  ],
};
if (keysOut) {
  const der = (key) => key.export({ format: 'der', type: 'pkcs8' }).toString('base64');
  fs.writeFileSync(keysOut, JSON.stringify({
    keys: [
      { kid, alg: 'ES256', pkcs8: der(ec.privateKey) },
      { kid: `${kid}-rsa`, alg: 'RS256', pkcs8: der(rsa.privateKey) },
    ],
  }));
}

// The id_token forgery of the next token response, if any (see the header).
let tamper = null;
const b64url = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const forge = (idToken, mode) => {
  const claims = JSON.parse(Buffer.from(idToken.split('.')[1], 'base64url').toString());
  const now = Math.floor(Date.now() / 1000);
  switch (mode) {
    case 'wrong_nonce': claims.nonce = 'not-the-nonce-we-were-sent'; break;
    case 'wrong_iss': claims.iss = 'http://127.0.0.1:1'; break;
    case 'wrong_aud': claims.aud = 'another-client'; break;
    case 'expired': claims.iat = now - 7200; claims.exp = now - 3600; break;
    case 'alg_none': return `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims)}.`;
    default: throw new Error(`unknown tamper mode ${mode}`);
  }
  const input = `${b64url({ alg: 'RS256', typ: 'JWT', kid: `${kid}-rsa` })}.${b64url(claims)}`;
  return `${input}.${crypto.sign('sha256', Buffer.from(input), rsa.privateKey).toString('base64url')}`;
};

const server = http.createServer();
server.listen(port, '127.0.0.1', () => {
  const { port: actual } = server.address();
  const issuer = `http://127.0.0.1:${actual}`;
  const tokenClaims = (token) => {
    const who = token.accountId ? ACCOUNTS[token.accountId] : SERVICE_ACCOUNT;
    if (!who) return undefined;
    const { sub: _sub, ...claims } = who;
    return claims;
  };
  const configuration = {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: 'openid profile email groups offline_access mcp notes:read',
      },
      {
        client_id: `${clientId}-opaque`,
        client_secret: clientSecret,
        redirect_uris: [redirectUri],
        grant_types: ['client_credentials'],
        response_types: [],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: 'mcp notes:read',
      },
    ],
    jwks,
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
    pkce: { required: () => true },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'groups', 'mcp', 'notes:read'],
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    async findAccount(_ctx, sub) {
      const account = ACCOUNTS[sub];
      if (!account) return undefined;
      return { accountId: sub, async claims() { return { ...account }; } };
    },
    extraTokenClaims: async (_ctx, token) => tokenClaims(token),
    ttl: { AccessToken: accessTtl, ClientCredentials: accessTtl },
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // Access tokens of the authorization code flow stay the provider's own (for its
        // userinfo endpoint); client-credentials tokens are for the MCP resource.
        defaultResource: (ctx) => (ctx.oidc.params?.grant_type === 'client_credentials' ? resource : undefined),
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator, client) => {
          if (indicator !== resource && indicator !== OTHER_RESOURCE) throw new errors.InvalidTarget();
          return {
            scope: 'mcp notes:read',
            audience: indicator,
            accessTokenTTL: accessTtl,
            accessTokenFormat: client.clientId.endsWith('-opaque') ? 'opaque' : 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
  };
  const provider = new Provider(issuer, configuration);
  provider.use(async (ctx, next) => {
    await next();
    if (tamper && ctx.path === '/token' && ctx.body?.id_token) {
      ctx.body = { ...ctx.body, id_token: forge(ctx.body.id_token, tamper) };
      tamper = null;
    }
  });
  const callback = provider.callback();
  server.on('request', (req, res) => {
    const url = new URL(req.url, issuer);
    if (url.pathname !== '/test/tamper') return callback(req, res);
    tamper = url.searchParams.get('mode');
    res.writeHead(204).end();
  });
  console.log(`OIDC_PROVIDER_PORT=${actual}`);
});

// The test harness kills the process; end cleanly on the usual signals too.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
