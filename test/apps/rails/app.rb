# frozen_string_literal: true

# A small, real ActiveRecord 6.1 application (standalone, no Rails generator)
# that seatctl's tests drive: it creates its database through a real migration
# and reads it back through its models. See README.md.
#
#   APP_DATABASE_URL=sqlite:///tmp/app.db /usr/bin/ruby app.rb <subcommand> ...
#
# Every subcommand prints exactly one JSON document on stdout; failures exit
# non-zero with a message on stderr.

# The machine's zone must not matter: storage stays UTC (default_timezone :utc).
ENV['TZ'] = 'America/New_York'
# The value Rails records in ar_internal_metadata for a development database.
ENV['RAILS_ENV'] ||= 'development'

require 'json'
require 'time'
require 'uri'
require 'active_record'

APP_ROOT = __dir__

def fail!(message)
  warn "app.rb: #{message}"
  exit 1
end

# --- database configuration ---------------------------------------------------

def database_config
  url = ENV['APP_DATABASE_URL']
  fail!('APP_DATABASE_URL is not set (sqlite:///absolute/path.db or postgres://user:password@host:port/db)') if url.nil? || url.empty?
  uri = begin
    URI.parse(url)
  rescue URI::InvalidURIError => e
    fail!("APP_DATABASE_URL is not a valid URL: #{e.message}")
  end
  unescape = ->(s) { s && URI::DEFAULT_PARSER.unescape(s) }
  case uri.scheme
  when 'sqlite', 'sqlite3'
    path = unescape.(uri.path.to_s)
    fail!("APP_DATABASE_URL: sqlite needs an absolute path (sqlite:///absolute/path.db), got #{url}") unless (uri.host.nil? || uri.host.empty?) && path.start_with?('/') && path.length > 1
    { adapter: 'sqlite3', database: path }
  when 'postgres', 'postgresql'
    database = unescape.(uri.path.to_s.sub(%r{\A/}, ''))
    fail!("APP_DATABASE_URL: no database name in #{url}") if database.empty?
    config = { adapter: 'postgresql', host: uri.host, port: uri.port, username: unescape.(uri.user),
               password: unescape.(uri.password), database: database }.compact
    URI.decode_www_form(uri.query.to_s).each { |k, v| config[k.to_sym] = v } # e.g. sslmode=disable
    config
  else
    fail!("APP_DATABASE_URL: unsupported scheme #{uri.scheme.inspect} (use sqlite:// or postgres://)")
  end
end

CONFIG = database_config

ActiveRecord::Base.default_timezone = :utc # the Rails default, spelled out
ActiveRecord::Base.logger = nil
ActiveRecord::Migration.verbose = false
ActiveRecord::Base.establish_connection(CONFIG)

require_relative 'app/models/application_record'
require_relative 'app/models/event'
require_relative 'app/models/seat'

# --- helpers ------------------------------------------------------------------

# Times the model returns, as ISO 8601 UTC with microseconds. Anything else
# (e.g. a number someone stored in a datetime column on SQLite, which AR 6.1
# hands back uncast) is an error, not a silent conversion.
def iso(time)
  return nil if time.nil?
  raise TypeError, "expected a time, the model returned #{time.inspect} (#{time.class})" unless time.respond_to?(:utc)

  time.utc.iso8601(6)
end

# Splits argv into positional arguments and --options. Options in `valued`
# take the next argument (which may start with '-', e.g. a negative number).
def parse_args(argv, valued: [], flags: [])
  positional = []
  options = {}
  i = 0
  while i < argv.length
    arg = argv[i]
    if valued.include?(arg)
      fail!("#{arg} needs a value") if i + 1 >= argv.length
      options[arg] = argv[i + 1]
      i += 2
    elsif flags.include?(arg)
      options[arg] = true
      i += 1
    elsif arg.start_with?('--')
      fail!("unknown option #{arg}")
    else
      positional << arg
      i += 1
    end
  end
  [positional, options]
end

def integer!(value, what)
  Integer(value, 10)
rescue ArgumentError, TypeError
  fail!("#{what} must be an integer, got #{value.inspect}")
end

# A1..A20, B1..B20, ... Z20, AA1, AB1, ...
def row_label(index)
  label = +''
  n = index + 1
  while n.positive?
    n, r = (n - 1).divmod(26)
    label.prepend((65 + r).chr)
  end
  label
end

def iso_of(seat, attribute)
  iso(seat.public_send(attribute))
rescue TypeError => e
  raise TypeError, "seat #{seat.seat_number} (id #{seat.id}) #{attribute}: #{e.message}"
end

def find_event!(name)
  Event.find_by(name: name) || fail!("no event named #{name.inspect}")
end

def find_seat!(event, seat_number)
  event.seats.find_by(seat_number: seat_number) || fail!("event #{event.name.inspect} has no seat #{seat_number.inspect}")
end

# --- subcommands --------------------------------------------------------------

def cmd_migrate(_argv)
  ActiveRecord::MigrationContext.new(File.join(APP_ROOT, 'db', 'migrate'), ActiveRecord::SchemaMigration).migrate
  { ok: true }
end

def cmd_create_event(argv)
  positional, options = parse_args(argv, valued: ['--seats'])
  fail!('usage: create-event NAME --seats N') unless positional.length == 1 && options['--seats']
  count = integer!(options['--seats'], '--seats')
  fail!('--seats must be >= 0') if count.negative?
  event = nil
  ActiveRecord::Base.transaction do
    event = Event.create!(name: positional[0])
    now = Time.now.utc
    rows = Array.new(count) do |i|
      { event_id: event.id, seat_number: "#{row_label(i / 20)}#{i % 20 + 1}",
        status: Seat.statuses[:available], created_at: now, updated_at: now }
    end
    rows.each_slice(1000) { |slice| Seat.insert_all!(slice) }
  end
  { event: event.id, seats: count }
end

def cmd_lock(argv)
  positional, options = parse_args(argv, valued: ['--user', '--expires-in-ms'], flags: ['--whole-second'])
  unless positional.length >= 2 && options['--user'] && options['--expires-in-ms']
    fail!('usage: lock EVENT_NAME --user NAME --expires-in-ms MS [--whole-second] SEAT...')
  end
  ms = integer!(options['--expires-in-ms'], '--expires-in-ms')
  event = find_event!(positional[0])
  locked = positional[1..].map do |seat_number|
    seat = find_seat!(event, seat_number)
    until_time = Time.now.utc + ms / 1000.0
    until_time = Time.at(until_time.to_i).utc if options['--whole-second']
    seat.update!(status: :locked, locked_by: options['--user'], locked_until: until_time)
    seat.reload
    { seat: seat.seat_number, locked_until: iso(seat.locked_until), updated_at: iso(seat.updated_at) }
  end
  { locked: locked }
end

def cmd_book(argv)
  positional, = parse_args(argv)
  fail!('usage: book EVENT_NAME SEAT...') unless positional.length >= 2
  event = find_event!(positional[0])
  booked = []
  refused = []
  positional[1..].each do |seat_number|
    Seat.transaction do
      seat = event.seats.lock.find_by(seat_number: seat_number) ||
             fail!("event #{event.name.inspect} has no seat #{seat_number.inspect}")
      if seat.locked? && seat.locked_until && seat.locked_until > Time.now
        seat.update!(status: :booked, locked_until: nil)
        booked << seat.seat_number
      else
        refused << seat.seat_number
      end
    end
  end
  { booked: booked, refused: refused }
end

def cmd_read(argv)
  positional, = parse_args(argv)
  fail!('usage: read [EVENT_NAME]') if positional.length > 1
  scope = Seat.joins(:event).includes(:event).order('events.name', 'seats.id')
  scope = scope.where(events: { name: positional[0] }) if positional[0]
  scope.map do |seat|
    {
      event: seat.event.name,
      seat: seat.seat_number,
      status: seat.status,
      status_raw: seat.read_attribute_before_type_cast(:status),
      locked_until: iso_of(seat, :locked_until),
      locked_by: seat.locked_by,
      updated_at: iso_of(seat, :updated_at),
      created_at: iso_of(seat, :created_at),
    }
  end
end

def seatctl_name?(name)
  name.start_with?('seatctl_')
end

def dump_sqlite
  require 'sqlite3'
  ActiveRecord::Base.connection_pool.disconnect!
  db = SQLite3::Database.new(CONFIG[:database], readonly: true)
  begin
    q = ->(ident) { '"' + ident.gsub('"', '""') + '"' }
    master_columns = %w[type name tbl_name rootpage sql]
    master = db.execute('SELECT type, name, tbl_name, rootpage, sql FROM sqlite_master ORDER BY type, name')
               .reject { |row| seatctl_name?(row[1]) || seatctl_name?(row[2]) }
    tables = {}
    master.select { |row| row[0] == 'table' }.map { |row| row[1] }.sort.each do |table|
      info = db.execute("PRAGMA table_info(#{q.(table)})") # cid, name, type, notnull, dflt_value, pk
      columns = info.map { |c| c[1] }
      pk = info.select { |c| c[5].positive? }.sort_by { |c| c[5] }.map { |c| c[1] }
      order = (pk.empty? ? columns : pk).map { |c| q.(c) }.join(', ')
      rows = db.execute("SELECT #{columns.map { |c| q.(c) }.join(', ')} FROM #{q.(table)} ORDER BY #{order}")
      rows = rows.reject { |row| seatctl_name?(row[0].to_s) } if table == 'sqlite_sequence'
      tables[table] = rows.map do |row|
        columns.zip(row.map { |v| v.is_a?(SQLite3::Blob) ? { blob: v.unpack1('H*') } : v }).to_h
      end
    end
    schema = {
      sqlite_master: master.map { |row| master_columns.zip(row).to_h },
      journal_mode: db.get_first_value('PRAGMA journal_mode'),
      user_version: db.get_first_value('PRAGMA user_version'),
    }
    { tables: tables, schema: schema }
  ensure
    db.close
  end
end

def dump_postgres
  conn = ActiveRecord::Base.connection
  # ::text output of dates and times must not depend on the server's settings.
  conn.execute("SET DateStyle TO 'ISO, MDY'; SET TimeZone TO 'UTC'; SET IntervalStyle TO 'postgres'")
  q = ->(ident) { conn.quote_column_name(ident) }
  # Rows whose first column (a table name) starts with seatctl_ are left out;
  # with named: true also rows whose second column (the object's name) does.
  list = lambda do |sql, named: false|
    conn.select_rows(sql).reject { |row| seatctl_name?(row[0]) || (named && seatctl_name?(row[1])) }
  end
  table_names = list.(<<~SQL).map(&:first)
    SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY c.relname
  SQL
  tables = {}
  table_names.each do |table|
    columns = conn.select_values(<<~SQL)
      SELECT a.attname FROM pg_attribute a
      WHERE a.attrelid = #{conn.quote("public.#{q.(table)}")}::regclass AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum
    SQL
    pk = conn.select_values(<<~SQL)
      SELECT a.attname FROM pg_index i
      JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE i.indrelid = #{conn.quote("public.#{q.(table)}")}::regclass AND i.indisprimary
      ORDER BY k.ord
    SQL
    # Qualified with the alias t so that ORDER BY sorts the native values, not
    # the ::text output columns of the same name.
    order = (pk.empty? ? columns : pk).map { |c| "t.#{q.(c)}" }.join(', ')
    select = columns.map { |c| "t.#{q.(c)}::text" }.join(', ')
    rows = conn.select_rows("SELECT #{select} FROM public.#{q.(table)} AS t ORDER BY #{order}")
    tables[table] = rows.map { |row| columns.zip(row).to_h }
  end
  schema = {
    columns: list.(<<~SQL).map { |r| { table: r[0], name: r[1], type: r[2], nullable: r[3] == 'true', default: r[4] } },
      SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), (NOT a.attnotnull)::text,
             pg_get_expr(d.adbin, d.adrelid)
      FROM pg_attribute a
      JOIN pg_class c ON c.oid = a.attrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY c.relname, a.attnum
    SQL
    indexes: list.(<<~SQL, named: true).map { |r| { table: r[0], name: r[1], indexdef: r[2] } },
      SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
      ORDER BY tablename, indexname
    SQL
    constraints: list.(<<~SQL, named: true).map { |r| { table: r[0], name: r[1], definition: r[2] } },
      SELECT c.relname, con.conname, pg_get_constraintdef(con.oid)
      FROM pg_constraint con
      JOIN pg_class c ON c.oid = con.conrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public'
      ORDER BY c.relname, con.conname
    SQL
    triggers: list.(<<~SQL, named: true).map { |r| { table: r[0], name: r[1], definition: r[2] } },
      SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid)
      FROM pg_trigger t
      JOIN pg_class c ON c.oid = t.tgrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND NOT t.tgisinternal
      ORDER BY c.relname, t.tgname
    SQL
    sequences: list.(<<~SQL).map { |r| { name: r[0], last_value: r[1] } },
      SELECT sequencename, last_value::text FROM pg_sequences WHERE schemaname = 'public'
      ORDER BY sequencename
    SQL
  }
  { tables: tables, schema: schema }
end

def cmd_dump(argv)
  fail!('usage: dump') unless argv.empty?
  CONFIG[:adapter] == 'sqlite3' ? dump_sqlite : dump_postgres
end

COMMANDS = {
  'migrate' => :cmd_migrate,
  'create-event' => :cmd_create_event,
  'lock' => :cmd_lock,
  'book' => :cmd_book,
  'read' => :cmd_read,
  'dump' => :cmd_dump,
}.freeze

command = ARGV[0]
fail!("usage: app.rb {#{COMMANDS.keys.join('|')}} ...") unless COMMANDS.key?(command)
begin
  result = send(COMMANDS[command], ARGV[1..])
  $stdout.write(JSON.generate(result), "\n")
rescue SystemExit
  raise
rescue StandardError => e
  fail!("#{command}: #{e.class}: #{e.message}")
end
