-- Cycle through pre-signed requests from a file: one request per three lines
-- (path, tab-separated "Name: value" headers, single-line body).
local requests = {}
local counter = 0

function init(args)
  local file = assert(io.open(os.getenv("BENCH_REQUESTS"), "r"))
  local lines = {}
  for line in file:lines() do lines[#lines + 1] = line end
  file:close()
  -- thread_index is set on each thread by setup() below, before init runs.
  local thread_id = thread_index or 0
  local threads = tonumber(os.getenv("BENCH_THREADS") or "1")
  local n = 0
  for i = 1, #lines, 3 do
    n = n + 1
    -- Each thread takes its own share, so no request is sent twice by accident.
    if (n - 1) % threads == thread_id then
      local headers = {}
      for pair in string.gmatch(lines[i + 1], "[^\t]+") do
        local name, value = string.match(pair, "^([^:]+): (.*)$")
        headers[name] = value
      end
      requests[#requests + 1] = wrk.format("POST", lines[i], headers, lines[i + 2])
    end
  end
end

local next_thread = 0
function setup(thread)
  thread:set("thread_index", next_thread)
  next_thread = next_thread + 1
end

function request()
  counter = counter + 1
  if counter > #requests then counter = 1 end
  return requests[counter]
end

local statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests_)
  local out = string.format(
    '{"requests": %d, "duration_us": %d, "errors": %d, "non_2xx": %d, "timeouts": %d, '
      .. '"p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f, "mean_ms": %.3f}',
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000)
  io.stderr:write("BENCH_RESULT " .. out .. "\n")
end
