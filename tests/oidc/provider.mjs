// A certified OpenID provider (panva/oidc-provider) for DockNap's OIDC tests,
// on a loopback port. One confidential client, PKCE required, the
// development login form (any password), and fixed users whose `groups`
// claim exercises DockNap's role mapping. Consent is granted automatically,
// so the only page a user sees is the login form.
//
//   PORT=0 REDIRECT_URI=http://127.0.0.1:8080/api/auth/oidc/callback node provider.mjs
//
// Prints `ready <issuer>` once it listens. GROUPS_FILE names a JSON file
// ({user: groups}) read at each sign-in, over the defaults below: a test
// changes a user's groups between sign-ins. CLIENT_ID / CLIENT_SECRET default
// to docknap / docknap-test-secret.
import fs from 'node:fs'
import http from 'node:http'
import Provider from 'oidc-provider'

const GROUPS = {
  alice: ['docknap-admins', 'staff'],
  bob: ['docknap-operators'],
  carol: 'staff', // one string, not a list: both shapes occur in the wild
  mallory: ['visitors'],
}

const clientId = process.env.CLIENT_ID || 'docknap'
const clientSecret = process.env.CLIENT_SECRET || 'docknap-test-secret'
const redirectUri = process.env.REDIRECT_URI
if (!redirectUri) throw new Error('REDIRECT_URI is required')

const server = http.createServer()
await new Promise((resolve) => server.listen(Number(process.env.PORT || 0), '127.0.0.1', resolve))
const issuer = `http://127.0.0.1:${server.address().port}`

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  cookies: { keys: ['docknap-test-only-cookie-key'] },
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email'],
    groups: ['groups'],
  },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        const claims = { sub: id, preferred_username: id, name: id, email: `${id}@example.test` }
        const extra = process.env.GROUPS_FILE && fs.existsSync(process.env.GROUPS_FILE)
          ? JSON.parse(fs.readFileSync(process.env.GROUPS_FILE, 'utf8')) : {}
        const groups = { ...GROUPS, ...extra }[id]
        if (groups !== undefined) claims.groups = groups
        return claims
      },
    }
  },
  // Consent granted for whatever was asked: the test is about DockNap.
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId })
    grant.addOIDCScope(ctx.oidc.params.scope)
    await grant.save()
    return grant
  },
})
// The development keys and interactions warn on every start; expected here.
provider.on('server_error', (ctx, err) => console.error('provider error:', err))
server.on('request', provider.callback())
console.log(`ready ${issuer}`)
