-- The dose figures both dispensing aggregates keep ({dose_figures} in dispensing_daily.sql
-- and dispensing_items_daily.sql): a take-home handout counts on the day it was handed out,
-- with all of its days' milligrams.
countIf(mode = 'observed') AS observed_doses,
countIf(mode = 'take_home') AS take_home_handouts,
sumIf(dose_mg, mode = 'observed') AS mg_observed,
sumIf(dose_mg * take_home_days, mode = 'take_home') AS mg_take_home
