# frozen_string_literal: true

class Seat < ApplicationRecord
  belongs_to :event
  enum status: { available: 0, locked: 1, booked: 2 }
end
