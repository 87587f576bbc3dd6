-- wrk script: announces with random peers over a fixed set of torrents.
--   BENCH_HASHES  file with one 40-hex info hash per line (the torrents, registered beforehand)
--   BENCH_PREFIX  path before /announce (e.g. "/<passkey>"), default empty
--   BENCH_PORTS   peers announce from this many ports (default: any), to bound the swarms' growth
-- Each request: a random torrent, a random peer id and port, ~25 % seeders, compact=1.
local hashes = {}
local prefix = os.getenv("BENCH_PREFIX") or ""
local ports = tonumber(os.getenv("BENCH_PORTS") or "64512")

local function load_hashes()
  local path = os.getenv("BENCH_HASHES") or "hashes.txt"
  for line in io.lines(path) do
    if #line == 40 then
      hashes[#hashes + 1] = (line:gsub("..", function(pair) return "%" .. pair end))
    end
  end
  assert(#hashes > 0, "no hashes in " .. path)
end

function init(args)
  load_hashes()
  -- a different sequence in every wrk thread
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
end

function request()
  local info_hash = hashes[math.random(#hashes)]
  local peer_id = string.format("-BN0001-%06d%06d", math.random(0, 999999), math.random(0, 999999))
  local port = 1024 + math.random(0, ports - 1)
  local left = (math.random() < 0.25) and 0 or 1048576
  local path = prefix .. "/announce?info_hash=" .. info_hash .. "&peer_id=" .. peer_id
    .. "&port=" .. port .. "&uploaded=0&downloaded=0&left=" .. left .. "&compact=1&numwant=50"
  return wrk.format("GET", path)
end
