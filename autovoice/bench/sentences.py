"""The fixed benchmark sentences, by length class (long ones up to 300 characters)."""

from __future__ import annotations

__all__ = ["SENTENCES", "all_sentences"]

SENTENCES: dict[str, tuple[str, ...]] = {
    "short": (
        "Hello world.",
        "Link.",
        "Menu, button.",
        "Good morning!",
    ),
    "medium": (
        "The quick brown fox jumps over the lazy dog.",
        "Your meeting with the design team starts in ten minutes.",
        "It is 7:45 p.m. and the temperature is 21 degrees.",
        "Did you remember to lock the front door, or not?",
    ),
    "long": (
        "In the beginning of the year, after a long and rather difficult winter, the small "
        "village by the river decided to hold a festival that would celebrate the return of the "
        "sun, the birds, and the first green shoots in the fields.",
        "The quarterly report shows revenue of 4.2 million dollars, up 12 percent on last year; "
        "costs rose by 3 percent, mostly from shipping, and the board expects growth to continue "
        "through the second half, though risks remain in two markets.",
        "When the train finally pulled into the station, forty minutes late and crowded with "
        "tired commuters, she stepped onto the platform, looked up at the old clock, and "
        "laughed, because she had forgotten why she had come at all.",
        "Please note: the system will restart at 02:00 tonight (UTC) for maintenance; save your "
        "work, close open documents, and expect the service to be back within roughly fifteen "
        "minutes, unless the database migration takes longer than planned.",
    ),
}


def all_sentences() -> list[tuple[str, str]]:
    """(length class, sentence) pairs in a fixed order."""
    return [(kind, text) for kind, texts in SENTENCES.items() for text in texts]
