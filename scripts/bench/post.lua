-- wrk script: one firing alert per request, a distinct fingerprint each time
-- (a per-thread counter), so every request is a new alert episode.
local counter = 0
local token = os.getenv("BENCH_TOKEN")
local path = os.getenv("BENCH_PATH") or "/hooks/alertmanager"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token
request = function()
  counter = counter + 1
  local body = string.format('{"version":"4","groupKey":"bench","truncatedAlerts":0,"status":"firing","receiver":"caretaker",'
    .. '"groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://bench",'
    .. '"alerts":[{"status":"firing","labels":{"alertname":"BenchNoRule","database":"memory","n":"%d"},'
    .. '"annotations":{},"startsAt":"2026-11-01T00:00:00Z","endsAt":"0001-01-01T00:00:00Z",'
    .. '"generatorURL":"","fingerprint":"%016x"}]}', counter, counter)
  return wrk.format(nil, path, nil, body)
end
