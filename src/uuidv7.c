/*
 * uuidv7.c
 *	  RFC 9562 version 7 UUIDs: chatstore.uuidv7().
 *
 * Layout: 48 bits of Unix time in milliseconds, the version (7), 12 bits of
 * sub-millisecond time (RFC 9562 section 6.2, method 3), the variant (10)
 * and 62 random bits.  Ids made in one backend are strictly increasing even
 * when the clock stands still or steps back, so conversations and messages
 * created by one session sort in creation order.
 */
#include "postgres.h"

#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "chatstore.h"

PG_FUNCTION_INFO_V1(chatstore_uuidv7);

/* The last timestamp used, in units of 1/4096 ms since the Unix epoch. */
static int64 last_tick = 0;

/* Random bytes fetched in bulk: pg_strong_random is a system call. */
static uint8 random_pool[256];
static int	random_used = sizeof(random_pool);

/*
 * Fill buf with len cryptographically strong random bytes from the pool.
 */
static void
TakeRandomBytes(uint8 *buf, int len)
{
	if (random_used + len > (int) sizeof(random_pool))
	{
		if (!pg_strong_random(random_pool, sizeof(random_pool)))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate random values for a UUID")));
		random_used = 0;
	}
	memcpy(buf, random_pool + random_used, len);
	random_used += len;
}

/*
 * Write a new version 7 UUID for the time "now" (a PostgreSQL timestamp)
 * into *uuid.
 */
void
GenerateUuidV7(pg_uuid_t *uuid, TimestampTz now)
{
	int64		unix_us;
	int64		tick;
	int64		ms;
	int			sub;

	unix_us = now + (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
	tick = (unix_us / 1000) * 4096 + ((unix_us % 1000) * 4096) / 1000;
	if (tick <= last_tick)
		tick = last_tick + 1;	/* keep ids of this backend increasing */
	last_tick = tick;
	ms = tick / 4096;
	sub = (int) (tick % 4096);

	TakeRandomBytes(uuid->data + 8, 8);
	uuid->data[0] = (uint8) (ms >> 40);
	uuid->data[1] = (uint8) (ms >> 32);
	uuid->data[2] = (uint8) (ms >> 24);
	uuid->data[3] = (uint8) (ms >> 16);
	uuid->data[4] = (uint8) (ms >> 8);
	uuid->data[5] = (uint8) ms;
	uuid->data[6] = (uint8) (0x70 | (sub >> 8));
	uuid->data[7] = (uint8) (sub & 0xFF);
	uuid->data[8] = (uint8) (0x80 | (uuid->data[8] & 0x3F));
}

/*
 * chatstore.uuidv7() RETURNS uuid
 */
Datum
chatstore_uuidv7(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *uuid = palloc(sizeof(pg_uuid_t));

	GenerateUuidV7(uuid, GetCurrentTimestamp());
	PG_RETURN_UUID_P(uuid);
}
