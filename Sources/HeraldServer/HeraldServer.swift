// HeraldServer
