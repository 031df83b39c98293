// HeraldSQL: Herald's own SQL, the `realtime` schema, shipped inside the binary as resources.
