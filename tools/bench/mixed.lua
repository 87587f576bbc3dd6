-- wrk script: the soak load: nine announces to one scrape, over the torrents in BENCH_HASHES, from a
-- bounded set of ports (BENCH_PORTS, default 100) so the swarms reach a steady size.
local hashes = {}
local ports = tonumber(os.getenv("BENCH_PORTS") or "100")
local n = 0

function init(args)
  for line in io.lines(os.getenv("BENCH_HASHES") or "hashes.txt") do
    if #line == 40 then
      hashes[#hashes + 1] = (line:gsub("..", function(pair) return "%" .. pair end))
    end
  end
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
end

function request()
  n = n + 1
  local info_hash = hashes[math.random(#hashes)]
  if n % 10 == 0 then
    return wrk.format("GET", "/scrape?info_hash=" .. info_hash)
  end
  local port = 1024 + math.random(0, ports - 1)
  return wrk.format("GET", "/announce?info_hash=" .. info_hash .. "&peer_id=-SK0001-" .. string.format("%012d", port)
    .. "&port=" .. port .. "&left=" .. ((port % 4 == 0) and 0 or 1048576) .. "&compact=1")
end
