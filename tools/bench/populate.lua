-- wrk script: fills one torrent with distinct peers, through a tracker started with
-- --trusted-proxy 127.0.0.1 (each announce names a different client in X-Forwarded-For).
--   BENCH_HASH   40-hex info hash     BENCH_PEERS  how many peers in all (split over wrk threads)
local counter, limit, id = 0, 0, 0
local threads = 0

function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

function init(args)
  id = tonumber(wrk.thread:get("id"))
  -- the scripts run wrk -t2: each thread adds half of the peers
  limit = math.ceil(tonumber(os.getenv("BENCH_PEERS")) / 2)
end

local hash = (os.getenv("BENCH_HASH"):gsub("..", function(pair) return "%" .. pair end))

function request()
  counter = counter + 1
  local n = id * 10000000 + counter
  local ip = string.format("10.%d.%d.%d", math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
  local path = "/announce?info_hash=" .. hash .. "&peer_id=-BP0001-" .. string.format("%012d", n)
    .. "&port=6881&left=" .. ((n % 4 == 0) and 0 or 1048576) .. "&numwant=0"
  return wrk.format("GET", path, { ["X-Forwarded-For"] = ip })
end

function response(status, headers, body)
  if counter >= limit then wrk.thread:stop() end
end
