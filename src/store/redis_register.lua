-- Writes a torrent's record: registered with its metadata (ARGV: hash, alias or '', 'put', 40
-- hex, the record, this instance) or removed with its peers ('drop'), and logs the change, at
-- once. Completions and peers of a torrent first heard of by announces are kept.
local h, alias, mode, hex, record, by = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local tk = P .. 't:' .. h
if mode == 'drop' then
  local gone = redis.call('ZRANGE', P .. 'z:' .. h, 0, -1)
  forget(h, gone)
  redis.call('DEL', tk, P .. 'ip:' .. h, P .. 'meta:' .. hex)
  redis.call('SREM', P .. 'known', h)
  redis.call('SREM', P .. 'registered', hex)
  redis.call('ZREM', P .. 'expiry', h)
  if alias ~= '' then redis.call('HDEL', P .. 'alias', alias) end
else
  redis.call('HSET', tk, 'r', '1')
  redis.call('SADD', P .. 'known', h)
  redis.call('SET', P .. 'meta:' .. hex, record)
  redis.call('SADD', P .. 'registered', hex)
  if alias ~= '' then redis.call('HSET', P .. 'alias', alias, h) end
end
redis.call('XADD', P .. 'log', 'MAXLEN', '~', '100000', '*', 'torrent', hex, 'by', by)
redis.call('PUBLISH', P .. 'changes', 'torrent')
return 0
