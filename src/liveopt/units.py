"""Time units. Every timestamp and duration in liveopt is an integer number of
nanoseconds; these are the one definition of the conversions."""

NS_PER_MS = 1_000_000
NS_PER_SECOND = 1_000 * NS_PER_MS
NS_PER_MINUTE = 60 * NS_PER_SECOND
NS_PER_DAY = 1_440 * NS_PER_MINUTE
