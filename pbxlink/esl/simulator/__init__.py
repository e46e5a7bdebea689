"""The ESL simulator: a real TCP server that speaks ESL as FreeSWITCH 1.10 does."""
