/*-------------------------------------------------------------------------
 *
 * refresh_record.c
 *		  A failed refresh raises an ERROR, which rolls back everything its
 *		  transaction wrote; yet its failure must stay in the refresh
 *		  history, where people look.  It is written by a short-lived
 *		  background worker, in a transaction of its own, as the same role
 *		  in the same database, while the failing backend waits for it.
 *
 * The worker only inserts (two rows at most): it never waits for a row
 * lock that the waiting backend holds.
 *
 * src/refresh_record.c
 *
 *-------------------------------------------------------------------------
 */
#include "kabsd_fdw.h"

#include "access/relation.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/lmgr.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(kabsd_record_failure);
PGDLLEXPORT void kabsd_record_worker_main(Datum arg);

/* What the worker writes, in a DSM segment; the strings follow. */
typedef struct FailureRecord
{
	Oid			dbid;
	Oid			sessionid;		/* who connects: a role that logged in */
	Oid			roleid;			/* who writes: the refresh's role */
	TimestampTz started_at;
	Interval	duration;
	bool		has_sqlstate;
	bool		recorded;		/* set by the worker when it committed */
	Size		name_len;
	Size		error_len;
	char		sqlstate[6];
	char		data[FLEXIBLE_ARRAY_MEMBER];	/* name\0error\0 */
} FailureRecord;

/*
 * Does this transaction hold a lock on the table that an INSERT would wait
 * for?  The worker would then wait for us while we wait for it.
 */
static bool
insert_would_wait(const char *nspname, const char *relname)
{
	Oid			nsp = get_namespace_oid(nspname, true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid(relname, nsp) : InvalidOid;
	Relation	rel;
	bool		held;

	if (!OidIsValid(relid))
		return false;
	rel = relation_open(relid, NoLock);
	held = CheckRelationLockedByMe(rel, ShareLock, true);
	relation_close(rel, NoLock);
	return held;
}

/*
 * kabsd_record_failure(name, started_at, duration, error, sqlstate):
 * records a failed refresh in kabsd.refresh_history and the backlog's
 * refreshes table, committed whatever becomes of the caller's
 * transaction.  Returns whether it was recorded (false: no background
 * worker could start, or it failed and said why in the server log).
 */
Datum
kabsd_record_failure(PG_FUNCTION_ARGS)
{
	text	   *name;
	text	   *error;
	Size		name_len;
	Size		error_len;
	dsm_segment *seg;
	FailureRecord *rec;
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	BgwHandleStatus status;
	bool		recorded;

	for (int i = 0; i < 4; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("only the SQL state of a failed refresh may be null")));
	name = PG_GETARG_TEXT_PP(0);
	error = PG_GETARG_TEXT_PP(3);
	name_len = VARSIZE_ANY_EXHDR(name);
	error_len = VARSIZE_ANY_EXHDR(error);
	seg = dsm_create(offsetof(FailureRecord, data) + name_len + error_len + 2, 0);
	rec = dsm_segment_address(seg);
	memset(rec, 0, offsetof(FailureRecord, data));
	rec->dbid = MyDatabaseId;
	rec->sessionid = GetSessionUserId();
	rec->roleid = GetUserId();
	rec->started_at = PG_GETARG_TIMESTAMPTZ(1);
	rec->duration = *PG_GETARG_INTERVAL_P(2);
	rec->name_len = name_len;
	rec->error_len = error_len;
	memcpy(rec->data, VARDATA_ANY(name), name_len);
	rec->data[name_len] = '\0';
	memcpy(rec->data + name_len + 1, VARDATA_ANY(error), error_len);
	rec->data[name_len + 1 + error_len] = '\0';
	if (!PG_ARGISNULL(4))
	{
		text_to_cstring_buffer(PG_GETARG_TEXT_PP(4), rec->sqlstate,
							   sizeof(rec->sqlstate));
		rec->has_sqlstate = true;
	}

	if (insert_would_wait("kabsd", "refresh_history") ||
		insert_would_wait(text_to_cstring(name), "refreshes"))
	{
		dsm_detach(seg);
		ereport(WARNING,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("could not record the failed refresh of backlog \"%s\"",
						text_to_cstring(name)),
				 errdetail("This transaction holds a lock on the refresh history that the recording would wait for.")));
		PG_RETURN_BOOL(false);
	}

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "kabsd_fdw");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "kabsd_record_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "kabsd_fdw refresh history");
	snprintf(worker.bgw_type, BGW_MAXLEN, "kabsd_fdw refresh history");
	worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(seg));
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		dsm_detach(seg);
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not record the failed refresh of backlog \"%s\"",
						text_to_cstring(name)),
				 errdetail("No background worker slot was free."),
				 errhint("Raise max_worker_processes.")));
		PG_RETURN_BOOL(false);
	}
	status = WaitForBackgroundWorkerShutdown(handle);
	recorded = status == BGWH_STOPPED && rec->recorded;
	dsm_detach(seg);
	PG_RETURN_BOOL(recorded);
}

/* The worker: one transaction, two inserts, then it exits. */
void
kabsd_record_worker_main(Datum arg)
{
	dsm_segment *seg;
	FailureRecord *rec;
	const char *name;
	const char *error;
	Oid			types[5] = {TEXTOID, TIMESTAMPTZOID, INTERVALOID, TEXTOID, TEXTOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	StringInfoData sql;
	Oid			save_userid;
	int			save_sec;

	/* a shutdown ends it between statements, as any backend */
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	seg = dsm_attach(DatumGetUInt32(arg));
	if (seg == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not map the shared memory of a failed refresh")));
	rec = dsm_segment_address(seg);
	name = rec->data;
	error = rec->data + rec->name_len + 1;
	/*
	 * The refresh's role may be one that cannot log in (SET ROLE to the
	 * owner, or the watcher acting as it): connect as the session's user,
	 * then write as that role.
	 */
	BackgroundWorkerInitializeConnectionByOid(rec->dbid, rec->sessionid, 0);
	pgstat_report_activity(STATE_RUNNING, "recording a failed refresh");

	/* only inserts, which wait for nobody; a bound all the same */
	SetConfigOption("lock_timeout", "10s", PGC_USERSET, PGC_S_SESSION);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(rec->roleid, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());

	values[0] = CStringGetTextDatum(name);
	values[1] = TimestampTzGetDatum(rec->started_at);
	values[2] = IntervalPGetDatum(&rec->duration);
	values[3] = CStringGetTextDatum(error);
	values[4] = rec->has_sqlstate ? CStringGetTextDatum(rec->sqlstate) : (Datum) 0;
	nulls[4] = rec->has_sqlstate ? ' ' : 'n';
	if (SPI_execute_with_args("INSERT INTO kabsd.refresh_history (name, started_at, duration, status, error, sqlstate) "
							  "VALUES ($1, $2, $3, 'failed', $4, $5) RETURNING id",
							  5, types, values, nulls, false, 1) != SPI_OK_INSERT_RETURNING ||
		SPI_processed != 1)
		elog(ERROR, "could not insert into kabsd.refresh_history");

	/* the backlog's own history, which its copies receive, when it has one */
	{
		bool		isnull;
		Datum		id = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
									   &isnull);
		Oid			rtypes[5] = {INT8OID, TIMESTAMPTZOID, INTERVALOID, TEXTOID};
		Datum		rvalues[4] = {id, values[1], values[2], values[3]};

		initStringInfo(&sql);
		appendStringInfo(&sql, "%s.refreshes", quote_identifier(name));
		if (SPI_execute_with_args("SELECT pg_catalog.to_regclass($1) IS NOT NULL", 1,
								  (Oid[]) {TEXTOID},
								  (Datum[]) {CStringGetTextDatum(sql.data)},
								  NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not look up the refreshes table of backlog \"%s\"", name);
		if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
									   &isnull)))
		{
			resetStringInfo(&sql);
			appendStringInfo(&sql,
							 "INSERT INTO %s.refreshes (id, started_at, duration, status, error) "
							 "VALUES ($1, $2, $3, 'failed', $4)", quote_identifier(name));
			if (SPI_execute_with_args(sql.data, 4, rtypes, rvalues, NULL, false, 0) != SPI_OK_INSERT)
				elog(ERROR, "could not insert into the refreshes table of backlog \"%s\"", name);
		}
	}

	PopActiveSnapshot();
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec);
	CommitTransactionCommand();
	rec->recorded = true;
	pgstat_report_activity(STATE_IDLE, NULL);
	dsm_detach(seg);
}
