-- wrk script: announces to one torrent from a fixed set of 10 peers (so the swarm keeps its size),
-- numwant=50, through a tracker started with --trusted-proxy 127.0.0.1.
--   BENCH_HASH   40-hex info hash
local hash = (os.getenv("BENCH_HASH"):gsub("..", function(pair) return "%" .. pair end))
local n = 0
function request()
  n = n % 10 + 1
  local path = "/announce?info_hash=" .. hash .. "&peer_id=-BM0001-" .. string.format("%012d", n)
    .. "&port=7000&left=1048576&numwant=50&compact=1"
  return wrk.format("GET", path, { ["X-Forwarded-For"] = "192.0.2." .. n })
end
