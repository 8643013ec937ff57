-- wrk: a different token from tokens.txt on each request (defeats token caches).
local toks = {}
for l in io.lines(os.getenv("TOKENS") or "tokens.txt") do toks[#toks+1] = l end
local i = 0
request = function()
  i = i % #toks + 1
  return wrk.format("GET", "/deals/exclusive", {["Authorization"] = "Bearer " .. toks[i]})
end
