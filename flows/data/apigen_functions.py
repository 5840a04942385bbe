"""The example function library of flows/apigen.py: plain Python functions that generated calls run against.

Each function has a row in apigen_functions.jsonl (its name, description and JSON tool schema).
The execution check calls only the functions defined here, by name, with the generated
arguments; an error a function raises is the recorded reason the call failed.
"""

from __future__ import annotations

import math


def final_velocity(initial_velocity: float, acceleration: float, time: float) -> float:
    """The velocity of an object after accelerating uniformly for some time."""
    return initial_velocity + acceleration * time


def permutation_count(n: int, k: int) -> int:
    """The number of ordered arrangements of k elements taken from a set of n."""
    return math.perm(n, k)


def binary_addition(a: str, b: str) -> str:
    """The sum of two binary numbers, as a binary number."""
    return bin(int(a, 2) + int(b, 2))[2:]


def celsius_to_fahrenheit(celsius: float) -> float:
    """A temperature in degrees Celsius, in degrees Fahrenheit."""
    return round(celsius * 9 / 5 + 32, 2)


def count_words(text: str) -> int:
    """The number of words (separated by whitespace) in a text."""
    return len(text.split())


def compound_interest(principal: float, annual_rate: float, years: int, compounds_per_year: int = 12) -> float:
    """What a deposit grows to with compound interest."""
    if compounds_per_year < 1:
        raise ValueError("compounds_per_year must be at least 1")
    return round(principal * (1 + annual_rate / compounds_per_year) ** (compounds_per_year * years), 2)


def is_leap_year(year: int) -> bool:
    """Whether a year of the Gregorian calendar is a leap year."""
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def mean(numbers: list[float]) -> float:
    """The arithmetic mean of a list of numbers."""
    if not numbers:
        raise ValueError("the mean of no numbers is undefined")
    return sum(numbers) / len(numbers)
