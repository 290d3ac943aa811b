"""The fixed benchmark sentences, by length class (long ones up to 300 characters)."""

from __future__ import annotations

import random

__all__ = [
    "SENTENCES",
    "UNIQUE_SENTENCES",
    "all_sentences",
    "length_class",
    "random_deltas",
]

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


def random_deltas(text: str, seed: int) -> list[str]:
    """`text` cut into pieces of 1-6 characters (mid-word, mid-number), as an LLM streams it."""
    rng = random.Random(seed)
    deltas, i = [], 0
    while i < len(text):
        n = rng.randint(1, 6)
        deltas.append(text[i : i + n])
        i += n
    return deltas


def all_sentences() -> list[tuple[str, str]]:
    """(length class, sentence) pairs in a fixed order."""
    return [(kind, text) for kind, texts in SENTENCES.items() for text in texts]


UNIQUE_SENTENCES: tuple[str, ...] = (
    "File saved.",
    "Two new messages.",
    "Battery at twelve percent.",
    "Downloads folder, 14 items.",
    "Wi-Fi connected to Harbour Lights.",
    "Press enter to confirm, escape to cancel.",
    "The kettle has boiled, and the tea is ready.",
    "Turn left in two hundred metres onto Mill Road.",
    "Your package was left with a neighbour at number nine.",
    "Rain is expected after four, so take an umbrella with you.",
    "Chapter three: the lighthouse keeper's daughter writes a letter.",
    "The meeting has been moved to Thursday afternoon at half past three.",
    "Warning: the disk is almost full; delete old backups to free some space.",
    "She opened the window, and the smell of cut grass drifted into the kitchen.",
    "Flight 2817 to Lisbon is now boarding at gate B twelve; please have your passport ready.",
    "Every Tuesday the market square fills with stalls selling cheese, bread, honey and flowers.",
    "If you can hear this message clearly, the speakers are working and the volume is about right.",
    "The recipe calls for two eggs, a cup of flour, a pinch of salt, and a little warm milk.",
    "Spelling check finished with four suggestions: receive, separate, necessary, and accommodate.",
    "After the concert, the orchestra walked out into the snow and played one more "
    "song for the crowd waiting outside.",
    "Line 42 of main dot c declares a variable that is never used; consider "
    "removing it or prefixing its name with an underscore.",
    "The museum opens at nine on weekdays and at ten on weekends, and entry is free "
    "on the first Sunday of every month.",
    "According to the forecast, a band of heavy showers will cross the coast "
    "overnight, clearing by mid morning with sunny spells.",
    "He counted the coins twice, found that he was still three short of the fare, "
    "and decided to walk home along the canal instead.",
    "New calendar invitation from Priya: quarterly planning, Monday the fourth, "
    "from ten until noon, in the large conference room.",
    "Your password will expire in five days; choose a new one that is at least "
    "twelve characters long and that you have not used before.",
    "The old bridge, built in 1887 from local sandstone, was closed for repairs "
    "last spring and reopened to pedestrians only in October.",
    "Welcome back. You have three unread notifications, one missed call from an "
    "unknown number, and a reminder to water the plants.",
    "Scientists studying the glacier found that it had retreated by nearly forty "
    "metres since the previous survey, far faster than their models predicted.",
    "To reset the router, hold the small button on the back for ten seconds until "
    "the lights flash orange, then wait about two minutes for it to restart.",
    "Quietly, so as not to wake the baby, they carried the boxes up the narrow "
    "stairs, stacked them in the spare room, and sat down on the floor to rest.",
    "The committee reviewed forty-two proposals this year and funded nine of them, "
    "most of which focus on clean water, rural schools, and small business loans.",
    "Once the download completes, the installer will verify the files, ask you to "
    "accept the licence, and offer to create a shortcut on your desktop.",
    "During the storm the power went out across the whole valley, and the only "
    "light came from candles in windows and the headlamps of passing trucks.",
    "Reading the letter again, she noticed a postscript squeezed into the margin in "
    "tiny handwriting: do not forget to feed the cat, and lock the shed.",
    "Traffic update: an accident on the ring road near junction seven has closed "
    "two lanes, and delays of up to thirty minutes are expected this evening.",
    "At the edge of the forest, where the path turns toward the river, there is a "
    "bench dedicated to a woman who walked here every morning for fifty years.",
    "The translation is mostly accurate, but the second paragraph mixes up the "
    "dates, and the final sentence should be in the past tense rather than the "
    "present.",
    "Before you leave, please switch off the lights, check that the back door is "
    "bolted, and put the spare key back under the flowerpot by the gate.",
    "Our records show two payments received this month, on the third and the "
    "nineteenth, leaving a balance of eighty-six pounds and forty pence.",
    "The hikers set out before dawn, crossed the ridge while the fog was still thick, "
    "stopped for soup at the shepherd's hut, and reached the summit just as the clouds "
    "parted and the whole lake appeared below them.",
    "When you submit the form, we will check your details against the electoral "
    "register, send a confirmation code to the phone number you gave us, and ask you "
    "to enter it within fifteen minutes to finish signing up.",
    "In his last interview, the retired captain described the night the radio failed "
    "somewhere south of Iceland, and how the crew steered by the stars for two days "
    "until a fishing boat found them and towed them home.",
    "The library will be closed from the twenty-third of December until the second "
    "of January; books due in that period can be returned to the drop box by the "
    "side entrance, and no late fees will be charged.",
)
"""Sentences of 10-240 characters, each spoken once by the heard-latency run (never cached)."""


def length_class(text: str) -> str:
    """short (< 40 characters), medium (< 120) or long."""
    return "short" if len(text) < 40 else "medium" if len(text) < 120 else "long"
