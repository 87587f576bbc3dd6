-- Expires peers not seen since the cutoff, in the swarms whose oldest peer is that old (the
-- expiry index), never a scan of every swarm. ARGV: cutoff, most swarms to look at.
-- Returns {swarms looked at, peers removed}.
local cutoff, limit = ARGV[1], ARGV[2]
local due = redis.call('ZRANGEBYSCORE', P .. 'expiry', '-inf', cutoff, 'LIMIT', 0, limit)
local removed = 0
for _, h in ipairs(due) do
  local s, l, c, registered = counts(h)
  local ds, dl = expire(h, cutoff)
  removed = removed + ds + dl
  settle(h)
  if registered == '1' and ds + dl > 0 then
    publish(h, s - ds, l - dl, c)
  end
end
return {#due, removed}
