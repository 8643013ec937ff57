-- wrk: GET /deals/exclusive with TOKEN, or with a different token from the TOKENS file on
-- each request (defeats token caches). With several wrk threads, thread k takes every
-- k-th token of the file, so no two threads send the same token.
-- With PROOFS (a file of DPoP proofs, each to be used once): Authorization: DPoP TOKEN
-- and a different proof on each request, thread k taking every k-th one.
local counter = 0
function setup(thread)
  thread:set("thread_id", counter)
  counter = counter + 1
end

local toks = nil
local proofs = nil
local i = 0
local stride = 1
function init(args)
  local id = tonumber(thread_id) or 0  -- set by setup() in this thread's globals
  stride = tonumber(os.getenv("THREADS") or "1")
  if os.getenv("TOKENS") then
    toks = {}
    for l in io.lines(os.getenv("TOKENS")) do toks[#toks+1] = l end
  end
  if os.getenv("PROOFS") then
    proofs = {}
    for l in io.lines(os.getenv("PROOFS")) do proofs[#proofs+1] = l end
  end
  i = id
end

local fixed = os.getenv("TOKEN")
request = function()
  if proofs then
    local proof = proofs[i % #proofs + 1]
    i = i + stride
    return wrk.format("GET", "/deals/exclusive", {["Authorization"] = "DPoP " .. fixed, ["DPoP"] = proof})
  end
  local token = fixed
  if toks then
    token = toks[i % #toks + 1]
    i = i + stride
  end
  return wrk.format("GET", "/deals/exclusive", {["Authorization"] = "Bearer " .. token})
end
