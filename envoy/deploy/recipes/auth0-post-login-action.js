/**
 * Auth0 post-login Action: puts the claims claimgate's AetherMarket configuration reads
 * (filter-config/aethermarket.json) into the access token for the AetherMarket API.
 *
 * Auth0 only keeps custom claims in namespaced form, so they are named
 * https://aethermarket.com/<name>; the configuration uses exactly these names:
 *   loyalty_tier  rules exclusive-deals (at least Gold) and recommendations-need-silver
 *                 (dry run); header x-loyalty-tier
 *   region        rules eu-only and regional-offers
 *   roles         header x-user-roles (the user's Auth0 roles)
 *   customer_id   header x-customer-id
 *   email         header x-user-email (access tokens carry no email otherwise)
 *   preferred_currency  header x-user-currency
 *   blocked       rule blocked-accounts (deny everything)
 * `permissions` (admin:read, admin:write) and `scope` (orders:write) are standard: enable
 * RBAC and "Add Permissions in the Access Token" on the API in Auth0.
 *
 * Where the values come from: app_metadata (set by your back office, not editable by the
 * user) for tier, region, customer id and blocked; user_metadata for the currency; roles
 * from Auth0 RBAC. Deploy: Auth0 Dashboard > Actions > Library > Create Action (trigger
 * Login / Post Login), paste this file, Deploy, then add it to the Login flow.
 */
const NAMESPACE = "https://aethermarket.com/";
const API_AUDIENCE = "https://api.aethermarket.com";
const TIERS = ["Bronze", "Silver", "Gold", "Platinum"];
const REGIONS = ["EU", "US", "APAC"];

exports.onExecutePostLogin = async (event, api) => {
  // Only tokens for the AetherMarket API get these claims.
  const audiences = [].concat(event.resource_server?.identifier ?? []);
  if (!audiences.includes(API_AUDIENCE)) return;

  const app = event.user.app_metadata ?? {};
  const user = event.user.user_metadata ?? {};
  const claim = (name, value) => {
    if (value !== undefined && value !== null && value !== "") {
      api.accessToken.setCustomClaim(NAMESPACE + name, value);
    }
  };

  // A tier or region claimgate does not know would fail its rules closed (403); send
  // none rather than a misspelt one.
  claim("loyalty_tier", TIERS.includes(app.loyalty_tier) ? app.loyalty_tier : "Bronze");
  claim("region", REGIONS.includes(app.region) ? app.region : undefined);
  claim("customer_id", app.customer_id);
  claim("roles", event.authorization?.roles ?? []);
  claim("email", event.user.email_verified ? event.user.email : undefined);
  claim("preferred_currency", user.preferred_currency);
  if (app.blocked === true) claim("blocked", true);
};
