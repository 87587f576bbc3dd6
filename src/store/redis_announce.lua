-- An announce: passkey, registration, the peer, its user's accounting and the answer, at once.
-- ARGV: hash, passkey ('' none), passkey required (1/0), registered only (1/0), now, cutoff,
-- address ('4'/'6' .. compact address), peer id, uploaded, downloaded, left,
-- event ('', started, completed, stopped), numwant, family ('4', '6', '*'), max peers per IP,
-- max torrents, peer ids wanted in the answer (1/0).
-- Returns {'ok', seeders, leechers, completed, peers4, peers6, the torrent's own hash} (each peer
-- its address, then its id if wanted; none with numwant 0, when the caller draws them itself in
-- the same round trip) or {error name, limit}.
local h, passkey, required = ARGV[1], ARGV[2], ARGV[3] == '1'
local registered_only, now, cutoff = ARGV[4] == '1', ARGV[5], tonumber(ARGV[6])
local address, peer_id = ARGV[7], ARGV[8]
local up, down, left = num(ARGV[9]), num(ARGV[10]), num(ARGV[11])
local event, want, family = ARGV[12], num(ARGV[13]), ARGV[14]
local max_per_ip, max_torrents, ids = num(ARGV[15]), num(ARGV[16]), ARGV[17] == '1'

local user = ''
if passkey ~= '' then
  local name = redis.call('HGET', P .. 'passkeys', passkey)
  if name then
    user = name
  elseif required then
    if redis.call('HEXISTS', P .. 'revoked', passkey) == 1 then
      return {'revoked', 0}
    end
    return {'invalid', 0}
  end
elseif required then
  return {'invalid', 0}
end

h = canonical(h)
local tk = P .. 't:' .. h
local s, l, c, registered = counts(h)
if registered_only and registered ~= '1' then
  return {'unregistered', 0}
end
if not registered then
  if event == 'stopped' then
    return {'ok', 0, 0, 0, '', '', h}
  end
  if max_torrents > 0 and redis.call('SCARD', P .. 'known') >= max_torrents then
    return {'too_many_torrents', max_torrents}
  end
  redis.call('HSET', tk, 'r', '0')
  redis.call('SADD', P .. 'known', h)
  registered = '0'
end
local before_s, before_l, before_c = s, l, c

-- Stale peers of this swarm go first; the expiry index moves only when its oldest peer changes.
local z = P .. 'z:' .. h
local oldest = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')
local reindex = #oldest == 0
if #oldest > 0 and tonumber(oldest[2]) <= cutoff then
  local ds, dl = expire(h, cutoff)
  s, l, reindex = s - ds, l - dl, true
end

local key = address .. user
local fam = string.sub(key, 1, 1)
local pk = P .. 'p:' .. h
local old = redis.call('HGET', pk, key)
local completed, was_seeder = 0, nil
local credit_up, credit_down, credit_done = 0, 0, 0
if old then
  local old_up, old_down, old_left, old_completed = struct.unpack('>dddB', old, 21)
  -- Counters are cumulative; one that went down means the client restarted: a new baseline.
  if up >= old_up and down >= old_down then
    credit_up, credit_down = up - old_up, down - old_down
  end
  completed, was_seeder = old_completed, old_left == 0
  reindex = reindex or oldest[1] == key
elseif event ~= 'stopped' then
  local field = ip_field(key)
  local ipk = P .. 'ip:' .. h
  if max_per_ip > 0 and num(redis.call('HGET', ipk, field)) >= max_per_ip then
    if reindex then settle(h) end
    return {'too_many_peers_ip', max_per_ip}
  end
  redis.call('HINCRBY', ipk, field, 1)
end
if event == 'completed' and completed == 0 then
  completed, credit_done, c = 1, 1, c + 1
  redis.call('HINCRBY', tk, 'c', 1)
end

local seeder = left == 0
local out4, out6 = {}, {}
if event == 'stopped' then
  if old then
    local ds, dl = forget(h, {key})
    s, l, reindex = s - ds, l - dl, true
  end
else
  redis.call('HSET', pk, key, peer_id .. struct.pack('>dddB', up, down, left, completed))
  redis.call('ZADD', z, now, key)
  if was_seeder ~= seeder then
    local class = seeder and 's' or 'l'
    if was_seeder ~= nil then
      local other = seeder and 'l' or 's'
      redis.call('SREM', P .. other .. fam .. ':' .. h, key)
      count(h, other, -1)
    end
    redis.call('SADD', P .. class .. fam .. ':' .. h, key)
    count(h, class, 1)
    if seeder then
      s = s + 1
      if was_seeder ~= nil then l = l - 1 end
    else
      l = l + 1
      if was_seeder ~= nil then s = s - 1 end
    end
  end
  local names = {}
  local families = family == '*' and {'4', '6'} or {family}
  for _, f in ipairs(families) do
    if not seeder then
      names[#names + 1] = P .. 's' .. f .. ':' .. h
    end
    names[#names + 1] = P .. 'l' .. f .. ':' .. h
  end
  if want > 0 then
    sample(h, names, want, key, ids, out4, out6)
  end
end
if reindex then
  settle(h)
end

if user ~= '' then
  local acct = P .. 'acct'
  redis.call('HSET', acct, user .. ':s', now)
  if credit_up > 0 then redis.call('HINCRBY', acct, user .. ':u', int(credit_up)) end
  if credit_down > 0 then redis.call('HINCRBY', acct, user .. ':d', int(credit_down)) end
  if credit_done > 0 then redis.call('HINCRBY', acct, user .. ':c', 1) end
end

if registered == '1' and (s ~= before_s or l ~= before_l or c ~= before_c) then
  publish(h, s, l, c)
end
return {'ok', s, l, int(c), table.concat(out4), table.concat(out6), h}
