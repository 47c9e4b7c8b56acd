# frozen_string_literal: true

class CreateEventsAndSeats < ActiveRecord::Migration[6.1]
  def change
    create_table :events do |t|
      t.string :name, null: false
      t.timestamps
    end
    add_index :events, :name, unique: true

    create_table :seats do |t|
      t.references :event, null: false, foreign_key: true
      t.string :seat_number, null: false
      t.integer :status, null: false, default: 0
      t.datetime :locked_until
      t.string :locked_by
      t.timestamps
    end
    add_index :seats, [:event_id, :seat_number], unique: true
  end
end
