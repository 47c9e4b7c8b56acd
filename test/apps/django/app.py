"""Driver of the test Django app, for seatctl's test suite.

    /usr/bin/python3 test/apps/django/app.py <subcommand> ...

The database comes from APP_DATABASE_URL (see seatproject/settings.py). Every
subcommand prints exactly one JSON document on stdout and exits 0, or prints a
message on stderr and exits non-zero. See README.md.
"""
import argparse
import io
import json
import os
import sys
import time
import traceback

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
os.environ['DJANGO_SETTINGS_MODULE'] = 'seatproject.settings'

import django  # noqa: E402

django.setup()

from datetime import timedelta  # noqa: E402

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from reservations.models import Event, Seat  # noqa: E402

User = get_user_model()


def iso(value):
    return None if value is None else value.isoformat()


def row_label(index):
    """0 -> A, 25 -> Z, 26 -> AA, 27 -> AB, ..."""
    label = ''
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        label = chr(ord('A') + rest) + label
    return label


def seat_of(event_name, seat_number):
    try:
        return Seat.objects.get(event__name=event_name, seat_number=seat_number)
    except Seat.DoesNotExist:
        raise SystemExit(f'no seat {seat_number!r} in event {event_name!r}')


# --- subcommands -----------------------------------------------------------------------------


def cmd_migrate(args):
    call_command('migrate', verbosity=0, interactive=False, stdout=io.StringIO(), stderr=io.StringIO())
    return {'ok': True}


def cmd_create_users(args):
    users = {}
    for name in args.names:
        user = User.objects.filter(username=name).first() or User.objects.create_user(username=name)
        users[name] = user.pk
    return {'users': users}


def cmd_create_event(args):
    with transaction.atomic():
        event = Event.objects.create(name=args.name)
        Seat.objects.bulk_create(
            Seat(event=event, seat_number=f'{row_label(i // 20)}{i % 20 + 1}', status='available')
            for i in range(args.seats)
        )
    return {'event': event.pk, 'seats': args.seats}


def cmd_lock(args):
    user = User.objects.get(username=args.user)
    until = timezone.now() + timedelta(milliseconds=args.expires_in_ms)
    if args.whole_second:
        until = until.replace(microsecond=0)
    locked = []
    with transaction.atomic():
        for number in args.seats:
            seat = seat_of(args.event, number)
            seat.status = 'locked'
            seat.locked_by = user
            seat.locked_until = until
            seat.save()
            locked.append({'seat': number, 'locked_until': iso(until)})
    return {'locked': locked}


def cmd_book(args):
    now = timezone.now()
    booked, refused = [], []
    with transaction.atomic():
        for number in args.seats:
            seat = seat_of(args.event, number)
            if seat.status == 'locked' and seat.locked_until is not None and seat.locked_until > now:
                seat.status = 'booked'
                seat.locked_until = None
                seat.save()
                booked.append(number)
            else:
                refused.append(number)
    return {'booked': booked, 'refused': refused}


def cmd_delete_user(args):
    User.objects.get(username=args.username).delete()
    return {'deleted': True}


def cmd_read(args):
    seats = Seat.objects.select_related('event', 'locked_by').order_by('event__name', 'id')
    if args.event is not None:
        seats = seats.filter(event__name=args.event)
    out = []
    for seat in seats:
        until = seat.locked_until
        offset = None if until is None or until.utcoffset() is None else until.utcoffset().total_seconds()
        out.append({
            'event': seat.event.name,
            'seat': seat.seat_number,
            'status': seat.status,
            'locked_until': iso(until),
            'locked_until_utcoffset_seconds': None if offset is None else int(offset),
            'locked_by': seat.locked_by.username if seat.locked_by else None,
            'locked_by_id': seat.locked_by_id,
        })
    return out


def timed(action):
    connection.ensure_connection()  # don't time the connection set-up
    start = time.perf_counter()
    result = action()
    return result, round((time.perf_counter() - start) * 1000, 3)


def cmd_bulk_release(args):
    released, ms = timed(lambda: Seat.objects.filter(status='locked', locked_until__lte=timezone.now()).update(
        status='available', locked_until=None, locked_by=None))
    return {'released': released, 'ms': ms}


def cmd_legacy_release(args):
    out = io.StringIO()
    _, ms = timed(lambda: call_command('release_expired_locks', stdout=out))
    words = out.getvalue().split()
    if len(words) != 2 or words[0] != 'released':
        raise SystemExit(f'unexpected output from release_expired_locks: {out.getvalue()!r}')
    return {'released': int(words[1]), 'ms': ms}


# --- dump: a raw snapshot of everything the app owns --------------------------------------------


def is_seatctl(name):
    return name is not None and name.lower().startswith('seatctl_')


def raw_value(value):
    if isinstance(value, bytes):
        return {'blob': value.hex()}
    return value


def dump_sqlite(path):
    import sqlite3

    if not os.path.exists(path):
        raise SystemExit(f'no SQLite database at {path}')
    db = sqlite3.connect(path)  # plain: no detect_types, values exactly as stored
    try:
        master = db.execute(
            'SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name, tbl_name').fetchall()
        master = [list(row) for row in master if not is_seatctl(row[1]) and not is_seatctl(row[2])]
        tables = {}
        for type_, name, _tbl, _sql in master:
            if type_ != 'table':
                continue
            info = db.execute(f'PRAGMA table_info("{name}")').fetchall()  # cid, name, type, notnull, dflt, pk
            columns = [c[1] for c in info]
            pk = [c[1] for c in sorted((c for c in info if c[5]), key=lambda c: c[5])]
            order = ', '.join(f'"{c}"' for c in (pk or columns))
            rows = db.execute(f'SELECT * FROM "{name}" ORDER BY {order}').fetchall()
            if name == 'sqlite_sequence':  # AUTOINCREMENT counters: keep only the app's tables
                rows = [r for r in rows if not is_seatctl(r[0])]
            tables[name] = {'columns': columns, 'rows': [[raw_value(v) for v in r] for r in rows]}
        pragmas = {p: db.execute(f'PRAGMA {p}').fetchone()[0] for p in ('journal_mode', 'user_version', 'application_id')}
        return {'tables': tables, 'schema': {'sqlite_master': master, 'pragmas': pragmas}}
    finally:
        db.close()


def dump_postgres(conf):
    import psycopg2

    db = psycopg2.connect(
        dbname=conf['NAME'], user=conf['USER'], password=conf['PASSWORD'], host=conf['HOST'],
        port=conf['PORT'] or None, options='-c TimeZone=UTC -c DateStyle=ISO,YMD')
    db.set_session(readonly=True)
    try:
        cur = db.cursor()

        def q(sql, params=None):
            cur.execute(sql, params)
            return cur.fetchall()

        tables = {}
        for schema, name, oid in q("""
                SELECT n.nspname, c.relname, c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'seatctl')
                  AND n.nspname NOT LIKE 'pg\\_%' ORDER BY n.nspname, c.relname"""):
            if is_seatctl(name):
                continue
            columns = [r[0] for r in q(
                'SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped '
                'ORDER BY attnum', (oid,))]
            pk = [r[0] for r in q("""
                SELECT a.attname FROM pg_index i
                JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
                JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                WHERE i.indrelid = %s AND i.indisprimary ORDER BY k.ord""", (oid,))]
            ident = lambda c: '"' + c.replace('"', '""') + '"'  # noqa: E731
            table = f'{ident(schema)}.{ident(name)}'
            # "t." so that ORDER BY sorts the typed columns, not the text output columns of the same name
            rows = q(f'SELECT {", ".join(ident(c) + "::text" for c in columns)} FROM {table} AS t '
                     f'ORDER BY {", ".join("t." + ident(c) for c in (pk or columns))}')
            key = name if schema == 'public' else f'{schema}.{name}'
            tables[key] = {'columns': columns, 'rows': [list(r) for r in rows]}

        not_ours = "NOT (c.relname ILIKE 'seatctl\\_%')"
        schema = {
            'columns': [list(r) for r in q(f"""
                SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
                       pg_get_expr(d.adbin, d.adrelid)
                FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                JOIN pg_namespace n ON n.oid = c.relnamespace
                LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
                  AND {not_ours}
                ORDER BY c.relname, a.attnum""")],
            'indexes': [list(r) for r in q("""
                SELECT tablename, indexname, indexdef FROM pg_indexes
                WHERE schemaname = 'public' AND NOT (tablename ILIKE 'seatctl\\_%')
                ORDER BY tablename, indexname""")],
            'constraints': [list(r) for r in q(f"""
                SELECT c.relname, k.conname, k.contype::text, pg_get_constraintdef(k.oid)
                FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
                JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND {not_ours}
                ORDER BY c.relname, k.conname""")],
        }
        sequences = {}
        for (name,) in q("""
                SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND c.relkind = 'S' AND NOT (c.relname ILIKE 'seatctl\\_%')
                ORDER BY c.relname"""):
            sequences[name] = list(q(f'SELECT last_value::text, is_called FROM public."{name}"')[0])
        schema['sequences'] = sequences
        return {'tables': tables, 'schema': schema}
    finally:
        db.rollback()
        db.close()


def cmd_dump(args):
    conf = settings.DATABASES['default']
    if conf['ENGINE'] == 'django.db.backends.sqlite3':
        return dump_sqlite(conf['NAME'])
    return dump_postgres(conf)


# --- command line ------------------------------------------------------------------------------


def parser():
    p = argparse.ArgumentParser(prog='app.py', description='Drive the test Django app.')
    sub = p.add_subparsers(dest='command', required=True)
    sub.add_parser('migrate').set_defaults(run=cmd_migrate)
    s = sub.add_parser('create-users')
    s.add_argument('names', nargs='+')
    s.set_defaults(run=cmd_create_users)
    s = sub.add_parser('create-event')
    s.add_argument('name')
    s.add_argument('--seats', type=int, required=True)
    s.set_defaults(run=cmd_create_event)
    s = sub.add_parser('lock')
    s.add_argument('event')
    s.add_argument('--user', required=True)
    s.add_argument('--expires-in-ms', type=int, required=True)
    s.add_argument('--whole-second', action='store_true')
    s.add_argument('seats', nargs='+')
    s.set_defaults(run=cmd_lock)
    s = sub.add_parser('book')
    s.add_argument('event')
    s.add_argument('seats', nargs='+')
    s.set_defaults(run=cmd_book)
    s = sub.add_parser('delete-user')
    s.add_argument('username')
    s.set_defaults(run=cmd_delete_user)
    s = sub.add_parser('read')
    s.add_argument('event', nargs='?')
    s.set_defaults(run=cmd_read)
    sub.add_parser('dump').set_defaults(run=cmd_dump)
    sub.add_parser('bulk-release').set_defaults(run=cmd_bulk_release)
    sub.add_parser('legacy-release').set_defaults(run=cmd_legacy_release)
    return p


def main():
    args = parser().parse_args()
    try:
        result = args.run(args)
    except SystemExit:
        raise
    except Exception as error:  # one line on stderr, the traceback after it
        sys.stderr.write(f'app.py {args.command}: {type(error).__name__}: {error}\n')
        traceback.print_exc(file=sys.stderr)
        sys.exit(1)
    sys.stdout.write(json.dumps(result, sort_keys=True) + '\n')


if __name__ == '__main__':
    main()
