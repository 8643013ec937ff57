// Runs the Auth0 Action with a recorded event and checks that it sets exactly the
// namespaced claims filter-config/aethermarket.json reads (node --test, from test.sh).
import assert from "node:assert/strict";
import fs from "node:fs";
import { createRequire } from "node:module";
import { test } from "node:test";

const require = createRequire(import.meta.url);
const action = require("./auth0-post-login-action.js");
const config = JSON.parse(fs.readFileSync(new URL("../../../filter-config/aethermarket.json", import.meta.url)));
const NAMESPACE = "https://aethermarket.com/";

function run(event) {
  const claims = {};
  const api = { accessToken: { setCustomClaim: (name, value) => { claims[name] = value; } } };
  return action.onExecutePostLogin(event, api).then(() => claims);
}
const event = (user, audience = "https://api.aethermarket.com") => ({
  resource_server: { identifier: audience },
  authorization: { roles: ["customer", "beta"] },
  user: { email: "alice@example.com", email_verified: true, ...user },
});

// Every namespaced claim the configuration reads, in rules or identity headers.
function claimsRead(value, found = new Set()) {
  if (Array.isArray(value)) value.forEach((v) => claimsRead(v, found));
  else if (value && typeof value === "object") {
    for (const [key, child] of Object.entries(value)) {
      if (key === "claim" && typeof child === "string" && child.startsWith(NAMESPACE)) found.add(child);
      claimsRead(child, found);
    }
  }
  return found;
}

test("sets every namespaced claim the AetherMarket configuration reads", async () => {
  const claims = await run(event({
    app_metadata: { loyalty_tier: "Gold", region: "EU", customer_id: "cus_42", blocked: true },
    user_metadata: { preferred_currency: "EUR" },
  }));
  assert.deepEqual(new Set(Object.keys(claims)), claimsRead(config));
  assert.equal(claims[`${NAMESPACE}loyalty_tier`], "Gold");
  assert.equal(claims[`${NAMESPACE}region`], "EU");
  assert.equal(claims[`${NAMESPACE}customer_id`], "cus_42");
  assert.deepEqual(claims[`${NAMESPACE}roles`], ["customer", "beta"]);
  assert.equal(claims[`${NAMESPACE}blocked`], true);
});

test("the tiers it sends are the configuration's tier list", async () => {
  for (const tier of config.tiers.loyalty) {
    const claims = await run(event({ app_metadata: { loyalty_tier: tier } }));
    assert.equal(claims[`${NAMESPACE}loyalty_tier`], tier);
  }
  const unknown = await run(event({ app_metadata: { loyalty_tier: "Diamond" } }));
  assert.equal(unknown[`${NAMESPACE}loyalty_tier`], "Bronze");
});

test("no claims for another API, no unverified email, no blocked claim unless blocked", async () => {
  assert.deepEqual(await run(event({ app_metadata: { loyalty_tier: "Gold" } }, "https://other.example.com")), {});
  const claims = await run(event({ email_verified: false, app_metadata: { blocked: false } }));
  assert.equal(claims[`${NAMESPACE}email`], undefined);
  assert.equal(claims[`${NAMESPACE}blocked`], undefined);
});
