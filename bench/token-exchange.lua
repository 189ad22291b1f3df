-- wrk script of bench/token-exchange.ts: POSTs pre-built token-exchange bodies, one per line of the
-- file given after `--`, each exactly once. Thread k of n (n follows the file and must equal wrk's
-- -t) sends lines k, k+n, k+2n, ...
--
-- wrk itself always runs for its whole -d, so the script keeps its own clock: a thread that has
-- sent its last body notes the time since its first request, stops (requests still in flight are
-- not counted: wrk counts answered requests only) and prints WRK_THREAD_DONE; the bench then
-- interrupts wrk (SIGINT), whose `done` prints one JSON line with the answered requests, that
-- duration and wrk's latency percentiles.
--
--   wrk -t1 -c64 -d600s --timeout 10s -s bench/token-exchange.lua http://host:port -- bodies.txt 1

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]])
local ts = ffi.new("bench_timespec")
local CLOCK_MONOTONIC = 1

local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end

local threads = {}

function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end

local requests = {}
local sent = 0
local started_us = nil

function init(args)
  local step = tonumber(args[2])
  local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
  local n = 0
  for line in io.lines(args[1]) do
    if n % step == index then
      requests[#requests + 1] = wrk.format("POST", "/v1/token", headers, line)
    end
    n = n + 1
  end
end

function request()
  if started_us == nil then
    started_us = now_us()
  end
  sent = sent + 1
  if sent > #requests then
    if elapsed_us == nil then
      elapsed_us = now_us() - started_us
      wrk.thread:stop()
      io.write("WRK_THREAD_DONE\n")
      io.flush()
    end
    -- wrk wants a request back; it goes to Ferry's unlogged health check, never to /v1/token.
    return wrk.format("GET", "/healthz")
  end
  return requests[sent]
end

function done(summary, latency)
  local elapsed = 0
  for _, thread in ipairs(threads) do
    local t = thread:get("elapsed_us")
    if t == nil then
      io.write("WRK_ERROR a thread did not send all its bodies before wrk ended\n")
      return
    end
    elapsed = math.max(elapsed, t)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"durationUs":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
      '"timeout":%d,"p50Us":%d,"p99Us":%d,"maxUs":%d,"meanUs":%.1f}\n',
    summary.requests, elapsed, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max, latency.mean))
end
