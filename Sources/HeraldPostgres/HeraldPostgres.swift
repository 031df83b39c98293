// HeraldPostgres: every libpq call of Herald.
