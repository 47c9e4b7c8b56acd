import type { InstantStorage } from './instant-storage.js';

export const PRESET_NAMES = ['seatctl', 'django', 'rails', 'prisma'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export type StatusValue = string | number;

/** What a preset fills in; the config may override any of it. */
export interface Preset {
  seats: {
    table: string;
    id: string;
    event: string;
    seat: string;
    status: string;
    statusValues: { available: StatusValue; locked: StatusValue; booked: StatusValue };
    lockedUntil: string;
    timeStorage: { sqlite: InstantStorage; postgres: InstantStorage };
    holder: { column: string; table?: string; id?: string; name?: string };
    lockToken: string | null;
    lockedAt: string | null;
    bookedBy: string | null;
    bookedAt: string | null;
    touch: string[];
  };
  events: { table: string; id: string; name: string } | null;
  /**
   * Optional columns the preset names on the chance the app has them (Rails'
   * updated_at): dropped when the table lacks them, where a column the config
   * names itself must exist.
   */
  ifPresent: string[];
}

const WORDS = { available: 'available', locked: 'locked', booked: 'booked' };

/** The presets. Django's needs the app label, which names its tables. */
export function preset(name: PresetName, app: string | undefined): Preset {
  switch (name) {
    case 'seatctl':
      return {
        seats: {
          table: 'seats',
          id: 'id',
          event: 'event_id',
          seat: 'seat_number',
          status: 'status',
          statusValues: WORDS,
          lockedUntil: 'locked_until',
          timeStorage: { sqlite: 'epoch-ms', postgres: 'timestamptz' },
          holder: { column: 'locked_by' },
          lockToken: 'lock_token',
          lockedAt: 'locked_at',
          bookedBy: 'booked_by',
          bookedAt: 'booked_at',
          touch: [],
        },
        events: { table: 'events', id: 'id', name: 'name' },
        ifPresent: [],
      };
    case 'django':
      // Django names tables <app label>_<model>, a foreign key column <field>_id,
      // and stores a DateTimeField as UTC text on SQLite, timestamptz on PostgreSQL.
      return {
        seats: {
          table: `${app}_seat`,
          id: 'id',
          event: 'event_id',
          seat: 'seat_number',
          status: 'status',
          statusValues: WORDS,
          lockedUntil: 'locked_until',
          timeStorage: { sqlite: 'text', postgres: 'timestamptz' },
          holder: { column: 'locked_by_id', table: 'auth_user', id: 'id', name: 'username' },
          lockToken: null,
          lockedAt: null,
          bookedBy: null,
          bookedAt: null,
          touch: [],
        },
        events: { table: `${app}_event`, id: 'id', name: 'name' },
        ifPresent: [],
      };
    case 'rails':
      // ActiveRecord: plural table names, an integer enum for the status, UTC
      // datetimes (text on SQLite, timestamp without time zone on PostgreSQL),
      // and updated_at touched on every change.
      return {
        seats: {
          table: 'seats',
          id: 'id',
          event: 'event_id',
          seat: 'seat_number',
          status: 'status',
          statusValues: { available: 0, locked: 1, booked: 2 },
          lockedUntil: 'locked_until',
          timeStorage: { sqlite: 'text', postgres: 'timestamp' },
          holder: { column: 'locked_by' },
          lockToken: null,
          lockedAt: null,
          bookedBy: null,
          bookedAt: null,
          touch: ['updated_at'],
        },
        events: { table: 'events', id: 'id', name: 'name' },
        ifPresent: ['updated_at'],
      };
    case 'prisma':
      // Prisma: model names as table names, camelCase columns (quoted on
      // PostgreSQL), timestamp(3) on PostgreSQL, ISO text through its SQLite
      // driver adapters; @updatedAt is set by the client, so seatctl touches it.
      return {
        seats: {
          table: 'Seat',
          id: 'id',
          event: 'eventId',
          seat: 'seatNumber',
          status: 'status',
          statusValues: WORDS,
          lockedUntil: 'lockedUntil',
          timeStorage: { sqlite: 'iso-text', postgres: 'timestamp' },
          holder: { column: 'lockedBy' },
          lockToken: null,
          lockedAt: null,
          bookedBy: null,
          bookedAt: null,
          touch: ['updatedAt'],
        },
        events: { table: 'Event', id: 'id', name: 'name' },
        ifPresent: ['updatedAt'],
      };
  }
}
