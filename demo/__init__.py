"""Demo data for `make run` and the browser tests: a platform with members, awards and
requests at every stage.

May use: rights and storage (it files requests the way a member would); nothing imports it
except cli and tests."""
