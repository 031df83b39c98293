// HeraldCore: the pure logic of Herald (JSON, Phoenix frames, channels, filters, fan-out index); no sockets, no libpq.
