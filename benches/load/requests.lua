-- wrk: GET /deals/exclusive with TOKEN, or with a different token from the TOKENS file on
-- each request (defeats token caches). With several wrk threads, thread k takes every
-- k-th token of the file, so no two threads send the same token.
local counter = 0
function setup(thread)
  thread:set("thread_id", counter)
  counter = counter + 1
end

local toks = nil
local i = 0
local stride = 1
function init(args)
  local id = tonumber(thread_id) or 0  -- set by setup() in this thread's globals
  stride = tonumber(os.getenv("THREADS") or "1")
  if os.getenv("TOKENS") then
    toks = {}
    for l in io.lines(os.getenv("TOKENS")) do toks[#toks+1] = l end
  end
  i = id
end

local fixed = os.getenv("TOKEN")
request = function()
  local token = fixed
  if toks then
    token = toks[i % #toks + 1]
    i = i + stride
  end
  return wrk.format("GET", "/deals/exclusive", {["Authorization"] = "Bearer " .. token})
end
