-- wrk script: POSTs the JSON bodies listed (one per line) in the file named by BODIES, in turn,
-- so requests carry different features / entities like real traffic.
local bodies = {}
local path = os.getenv("BENCH_PATH")
local i = 0
for line in io.lines(os.getenv("BODIES")) do bodies[#bodies + 1] = line end
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, path, nil, bodies[i])
end
