-- tinytracker's swarm in Redis: the shared part of every script (store/redis.rs puts one entry
-- point after it). Each script runs atomically, so an announce is one round trip and no other
-- instance sees it half done.
--
-- Keys (H = the 20 raw bytes of an info hash; a peer key is '4' or '6', the peer's address as in
-- a compact answer (4 or 16 bytes of IP, 2 of port), then the name of its user, if any):
--   tt:t:H       hash  r = 1 registered / 0 only announced, c = completions, s and l = its
--                      seeders and leechers (kept as peers come, change and go)
--   tt:z:H       zset  peer key -> last seen (Unix seconds)
--   tt:p:H       hash  peer key -> peer id (20 bytes) .. uploaded, downloaded, left, completed
--   tt:s4:H ...  sets  peer keys of seeders and leechers, per address family (s4 s6 l4 l6)
--   tt:ip:H      hash  '4'/'6' .. IP -> peers from that address
--   tt:known     set   every H with a tt:t:H (for --max-torrents)
--   tt:expiry    zset  H -> last seen of its oldest peer: what the sweep looks at
--   tt:totals    hash  s, l: seeders and leechers of the whole tracker
--   tt:alias     hash  truncated v2 hash -> the v1 hash of the hybrid torrent
--   tt:passkeys  hash  passkey -> user name; tt:revoked: passkey -> user name (no longer valid)
--   tt:acct      hash  name:u, name:d, name:c, name:s: uploaded, downloaded, completions, last seen
-- A registered torrent whose counts change is published on the channel tt:counts as
-- H .. 'seeders leechers completed'.

local P = 'tt:'

local function num(text)
  return tonumber(text) or 0
end

local function int(n)
  return string.format('%.0f', n)
end

-- (seeders, leechers, completions, registered flag) of `h`: one call.
local function counts(h)
  local t = redis.call('HMGET', P .. 't:' .. h, 's', 'l', 'c', 'r')
  return num(t[1]), num(t[2]), num(t[3]), t[4]
end

local function ip_field(key)
  if string.sub(key, 1, 1) == '4' then
    return string.sub(key, 1, 5)
  end
  return string.sub(key, 1, 17)
end

-- Counts a peer in (delta 1) or out (-1) of class 's' or 'l'.
local function count(h, class, delta)
  redis.call('HINCRBY', P .. 't:' .. h, class, delta)
  redis.call('HINCRBY', P .. 'totals', class, delta)
end

-- Forgets peers of `h` (keys in `gone`), whichever set they are in. Returns (seeders, leechers)
-- removed.
local function forget(h, gone)
  if #gone == 0 then
    return 0, 0
  end
  local ds, dl = 0, 0
  local ipk = P .. 'ip:' .. h
  for _, key in ipairs(gone) do
    local fam = string.sub(key, 1, 1)
    if redis.call('SREM', P .. 's' .. fam .. ':' .. h, key) == 1 then
      ds = ds + 1
    elseif redis.call('SREM', P .. 'l' .. fam .. ':' .. h, key) == 1 then
      dl = dl + 1
    end
    local field = ip_field(key)
    if redis.call('HINCRBY', ipk, field, -1) <= 0 then
      redis.call('HDEL', ipk, field)
    end
  end
  for i = 1, #gone, 1000 do
    local last = math.min(i + 999, #gone)
    redis.call('HDEL', P .. 'p:' .. h, unpack(gone, i, last))
    redis.call('ZREM', P .. 'z:' .. h, unpack(gone, i, last))
  end
  if ds > 0 then count(h, 's', -ds) end
  if dl > 0 then count(h, 'l', -dl) end
  return ds, dl
end

-- Forgets the peers of `h` not seen since `cutoff`; returns (seeders, leechers) removed.
local function expire(h, cutoff)
  return forget(h, redis.call('ZRANGEBYSCORE', P .. 'z:' .. h, '-inf', cutoff))
end

-- After its oldest peer may have changed: the place of `h` in the expiry index, and no trace of
-- a torrent nobody registered once its last peer is gone (an open tracker keeps no empty
-- torrents).
local function settle(h)
  local oldest = redis.call('ZRANGE', P .. 'z:' .. h, 0, 0, 'WITHSCORES')
  if #oldest > 0 then
    redis.call('ZADD', P .. 'expiry', oldest[2], h)
    return
  end
  redis.call('ZREM', P .. 'expiry', h)
  if redis.call('HGET', P .. 't:' .. h, 'r') == '0' then
    redis.call('DEL', P .. 't:' .. h, P .. 'ip:' .. h)
    redis.call('SREM', P .. 'known', h)
  end
end

-- Publishes the counts of a registered torrent.
local function publish(h, s, l, c)
  redis.call('PUBLISH', P .. 'counts', h .. s .. ' ' .. l .. ' ' .. int(c))
end

local function canonical(h)
  return redis.call('HGET', P .. 'alias', h) or h
end

-- Up to `want` random peers of the sets `names`, shared out by their sizes, leaving out `self`;
-- each as its address bytes (and its peer id with `ids`), appended to out4 or out6.
local function sample(h, names, want, self, ids, out4, out6)
  local sizes, total = {}, 0
  for i, name in ipairs(names) do
    sizes[i] = redis.call('SCARD', name)
    total = total + sizes[i]
  end
  if total == 0 or want <= 0 then
    return
  end
  local keys = {}
  for i, name in ipairs(names) do
    local share = sizes[i]
    if total > want then
      share = math.ceil(want * sizes[i] / total)
    end
    if share > 0 then
      -- A small set is taken whole. From a larger one, draws with repetition (a negative count:
      -- O(count), where a distinct draw of a large part of a set copies the whole set), twice
      -- as many as wanted, the repeats and the announcing peer itself left out.
      local drawn
      if sizes[i] <= share + 1 then
        drawn = redis.call('SMEMBERS', name)
      else
        drawn = redis.call('SRANDMEMBER', name, -(2 * share + 2))
      end
      local taken, seen = 0, {}
      for _, key in ipairs(drawn) do
        if key ~= self and not seen[key] and taken < share and #keys < want then
          seen[key] = true
          keys[#keys + 1] = key
          taken = taken + 1
        end
      end
    end
  end
  if #keys == 0 then
    return
  end
  local values = {}
  if ids then
    values = redis.call('HMGET', P .. 'p:' .. h, unpack(keys))
  end
  for i, key in ipairs(keys) do
    local id = ''
    if ids then
      id = values[i] and string.sub(values[i], 1, 20) or string.rep('\0', 20)
    end
    if string.sub(key, 1, 1) == '4' then
      out4[#out4 + 1] = string.sub(key, 2, 7) .. id
    else
      out6[#out6 + 1] = string.sub(key, 2, 19) .. id
    end
  end
end
