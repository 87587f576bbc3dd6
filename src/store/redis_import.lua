-- Puts one torrent's saved peers in place (an import). ARGV: hash, registered (1/0),
-- completions, then per peer: key, value (as an announce writes it), last seen, seeder (1/0).
local h = ARGV[1]
local tk = P .. 't:' .. h
redis.call('HSET', tk, 'r', ARGV[2], 'c', ARGV[3])
redis.call('SADD', P .. 'known', h)
for i = 4, #ARGV, 4 do
  local key, value, seen, seeder = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3] == '1'
  local fam = string.sub(key, 1, 1)
  if not redis.call('HGET', P .. 'p:' .. h, key) then
    redis.call('HINCRBY', P .. 'ip:' .. h, ip_field(key), 1)
    local class = seeder and 's' or 'l'
    redis.call('SADD', P .. class .. fam .. ':' .. h, key)
    count(h, class, 1)
  end
  redis.call('HSET', P .. 'p:' .. h, key, value)
  redis.call('ZADD', P .. 'z:' .. h, seen, key)
end
settle(h)
return 0
