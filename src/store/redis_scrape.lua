-- A scrape. ARGV: registered only (1/0), passkey ('' none), passkey required (1/0), then the
-- hashes asked about. Returns {'ok', then per hash: the torrent's own hash ('' when not served),
-- seeders, leechers, completed} or {'invalid'} / {'revoked'}.
local registered_only, passkey, required = ARGV[1] == '1', ARGV[2], ARGV[3] == '1'
if required then
  if passkey == '' then
    return {'invalid'}
  end
  if not redis.call('HGET', P .. 'passkeys', passkey) then
    if redis.call('HEXISTS', P .. 'revoked', passkey) == 1 then
      return {'revoked'}
    end
    return {'invalid'}
  end
end
local out = {'ok'}
for i = 4, #ARGV do
  local h = canonical(ARGV[i])
  local s, l, c, registered = counts(h)
  if registered and (registered == '1' or not registered_only) then
    out[#out + 1] = h
    out[#out + 1] = s
    out[#out + 1] = l
    out[#out + 1] = int(c)
  else
    out[#out + 1] = ''
    out[#out + 1] = 0
    out[#out + 1] = 0
    out[#out + 1] = '0'
  end
end
return out
