-- wrk: GET /deals/exclusive with TOKEN, or with a different token from the TOKENS file
-- on each request (defeats token caches).
local toks = nil
if os.getenv("TOKENS") then
  toks = {}
  for l in io.lines(os.getenv("TOKENS")) do toks[#toks+1] = l end
end
local fixed = os.getenv("TOKEN")
local i = 0
request = function()
  local token = fixed
  if toks then
    i = i % #toks + 1
    token = toks[i]
  end
  return wrk.format("GET", "/deals/exclusive", {["Authorization"] = "Bearer " .. token})
end
