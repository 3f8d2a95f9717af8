"""What the server thinks, in numbers: totals, like rates, member stats, favourites, a server's gallery (and
whether it is public), the CSV export, and the file's integrity check. Read-only but for the gallery's setting."""

from __future__ import annotations

import csv
import io
import time

from .connection import StoreBase, _completes
from .results import KINDS
from .rows import _ITEMS, _RESULT_SELECT, ResultRow, _check, _result_row

EXPORT_COLUMNS = (
    "result_id", "message_id", "channel_id", "kind", "model", "model_version", "seed",
    "user_id", "source", "value", "created_at",
)  # fmt: skip
GALLERY_ORDERS = ("new", "top")  # a gallery's order: newest first, or most net-liked first


class ReportsMixin(StoreBase):
    """Statistics and exports over results and votes; only `set_web_public` writes."""

    async def counts(self, model: str | None = None, server: int | None = None) -> dict:
        """Totals, for one model or all, in one server (0: DMs) or everywhere (None): results, likes, dislikes,
        voters (distinct users), signals."""
        where = "(:model IS NULL OR r.model = :model) AND (:server IS NULL OR COALESCE(r.guild_id, 0) = :server)"
        row = await self._fetch_one(
            f"""
            SELECT
                (SELECT COUNT(*) FROM results AS r WHERE {where}) AS results,
                COUNT(*) FILTER (WHERE v.value > 0) AS likes,
                COUNT(*) FILTER (WHERE v.value < 0) AS dislikes,
                COUNT(DISTINCT v.user_id) AS voters,
                (SELECT COUNT(*) FROM signals AS s JOIN results AS r ON r.id = s.result_id WHERE {where}) AS signals
            FROM votes AS v JOIN results AS r ON r.id = v.result_id
            WHERE {where}
            """,
            {"model": model, "server": server},
        )
        return dict(row)

    async def like_rates(self, model: str, server: int | None = None) -> dict[str, dict]:
        """Per version of ``model``: results, likes, dislikes and like_rate (None before any vote). With
        ``server``, of the results posted in that server (0: DMs), and the base's versions are named ``base
        v0005`` beside the server's own (``v0002``)."""
        rows = await self._fetch(
            """
            SELECT r.model_version, r.lineage, COUNT(DISTINCT r.id) AS results,
                   COUNT(*) FILTER (WHERE v.value > 0) AS likes,
                   COUNT(*) FILTER (WHERE v.value < 0) AS dislikes
            FROM results AS r LEFT JOIN votes AS v ON v.result_id = r.id
            WHERE r.model = :model AND (:server IS NULL OR COALESCE(r.guild_id, 0) = :server)
            GROUP BY r.lineage, r.model_version ORDER BY r.lineage, r.model_version
            """,
            {"model": model, "server": server},
        )
        rates = {}
        for row in rows:
            likes, dislikes = row["likes"], row["dislikes"]
            name = row["model_version"]
            if server and row["lineage"] == 0:
                name = f"base {name}"
            rates[name] = {
                "results": row["results"],
                "likes": likes,
                "dislikes": dislikes,
                "like_rate": likes / (likes + dislikes) if likes + dislikes else None,
            }
        return rates

    async def user_stats(self, user_id: int, guild_id: int | None = None) -> dict:
        """A member's results requested, votes given, and likes received from others on their results
        (in one guild, or everywhere when ``guild_id`` is None)."""
        row = await self._fetch_one(
            """
            SELECT
                (SELECT COUNT(*) FROM results AS r
                 WHERE r.requester_id = :user AND (:guild IS NULL OR r.guild_id = :guild)) AS results,
                (SELECT COUNT(*) FROM votes AS v JOIN results AS r ON r.id = v.result_id
                 WHERE v.user_id = :user AND (:guild IS NULL OR r.guild_id = :guild)) AS votes,
                (SELECT COUNT(*) FROM votes AS v JOIN results AS r ON r.id = v.result_id
                 WHERE r.requester_id = :user AND v.user_id != :user AND v.value > 0
                   AND (:guild IS NULL OR r.guild_id = :guild)) AS likes_received
            """,
            {"user": user_id, "guild": guild_id},
        )
        return dict(row)

    async def favourites(self, guild_id: int | None, limit: int = 5) -> list[tuple[ResultRow, int]]:
        """The most net-liked results (score = likes - dislikes > 0), best first, newest first on ties;
        ``guild_id`` None means every guild."""
        rows = await self._fetch(
            f"""
            SELECT {_RESULT_SELECT}, SUM(v.value) AS score
            FROM results AS r JOIN votes AS v ON v.result_id = r.id
            WHERE :guild IS NULL OR r.guild_id = :guild
            GROUP BY r.id HAVING score > 0
            ORDER BY score DESC, r.id DESC LIMIT :limit
            """,
            {"guild": guild_id, "limit": limit},
        )
        return [(_result_row(row), row["score"]) for row in rows]

    async def gallery(self, guild_id: int, *, kinds: tuple[str, ...] | None = None, order: str = "new",
                      since: float = 0.0, limit: int = 48, offset: int = 0) -> tuple[list[tuple[ResultRow, int, int]], int]:
        """A server's results for its gallery, as (result, likes, dislikes): newest first (``order`` "new") or
        most net-liked first, newest first on ties ("top"); of the ``kinds`` given (None: every kind), made at
        or after ``since``; ``limit`` of them from ``offset``. Also how many match in all."""
        if order not in GALLERY_ORDERS:
            raise ValueError(f"order must be one of {', '.join(GALLERY_ORDERS)}")
        for kind in kinds or ():
            _check(kind, KINDS, "kind")
        args = {"guild": guild_id, "since": since, "limit": limit, "offset": offset, "top": order == "top"}
        args.update({f"k{i}": kind for i, kind in enumerate(kinds or ())})
        where = "r.guild_id = :guild AND r.created_at >= :since"
        if kinds:  # placeholders, one per kind: the values are bound, never written into the SQL
            where += f" AND r.kind IN ({', '.join(f':k{i}' for i in range(len(kinds)))})"
        rows = await self._fetch(
            f"""
            SELECT {_RESULT_SELECT}, COALESCE(SUM(v.value > 0), 0) AS likes, COALESCE(SUM(v.value < 0), 0) AS dislikes
            FROM results AS r LEFT JOIN votes AS v ON v.result_id = r.id
            WHERE {where}
            GROUP BY r.id
            ORDER BY CASE WHEN :top THEN COALESCE(SUM(v.value), 0) ELSE 0 END DESC, r.id DESC
            LIMIT :limit OFFSET :offset
            """,
            args,
        )
        (total,) = await self._fetch_one(f"SELECT COUNT(*) FROM results AS r WHERE {where}", args)
        return [(_result_row(row), row["likes"], row["dislikes"]) for row in rows], total

    async def votes_on(self, result_id: int) -> tuple[int, int]:
        """(likes, dislikes): the current votes on one result."""
        row = await self._fetch_one(
            "SELECT COALESCE(SUM(value > 0), 0), COALESCE(SUM(value < 0), 0) FROM votes WHERE result_id = ?",
            (result_id,))
        return int(row[0]), int(row[1])

    async def children(self, result_id: int, limit: int = 24) -> list[ResultRow]:
        """The results made from this one (a variation, a morph from one of its cells), oldest first."""
        rows = await self._fetch(
            f"""
            SELECT {_RESULT_SELECT} FROM results AS r, json_each(r.parents) AS p
            WHERE p.value = :id ORDER BY r.id LIMIT :limit
            """,
            {"id": result_id, "limit": limit},
        )
        return [_result_row(row) for row in rows]

    @_completes
    async def set_web_public(self, guild_id: int, public: bool, *, name: str = "", actor_id: int | None = None) -> None:
        """Make server ``guild_id``'s gallery public on the web pages, or private again; ``name`` is what the pages
        call the server for visitors who are not in it."""
        async with self._write() as db:
            await db.execute(
                """
                INSERT INTO guild_settings (guild_id, name, web_public, updated_by, updated_at)
                VALUES (:g, :name, :public, :actor, :now)
                ON CONFLICT (guild_id) DO UPDATE SET name = CASE WHEN :name = '' THEN name ELSE :name END,
                    web_public = :public, updated_by = :actor, updated_at = :now
                """,
                {"g": int(guild_id), "name": name[:100], "public": int(bool(public)), "actor": actor_id,
                 "now": time.time()})

    async def web_public(self, guild_id: int) -> str | None:
        """The name of server ``guild_id`` when its gallery is public, else None."""
        row = await self._fetch_one("SELECT name FROM guild_settings WHERE guild_id = ? AND web_public = 1",
                                    (int(guild_id),))
        return (row["name"] or str(guild_id)) if row else None

    async def guilds(self) -> list[int]:
        """Every server with a result stored."""
        rows = await self._fetch("SELECT DISTINCT guild_id FROM results WHERE guild_id IS NOT NULL ORDER BY 1", ())
        return [int(row[0]) for row in rows]

    async def export_csv(self, guild_id: int | None = None) -> str:
        """Every current vote and signal as CSV (header `EXPORT_COLUMNS`), oldest first."""
        rows = await self._fetch(
            f"""
            WITH items AS ({_ITEMS})
            SELECT r.id, r.message_id, r.channel_id, r.kind, r.model, r.model_version, r.seed,
                   i.user_id, i.source, i.value, i.created_at
            FROM items AS i JOIN results AS r ON r.id = i.result_id
            WHERE :guild IS NULL OR r.guild_id = :guild
            ORDER BY i.created_at, i.seq
            """,
            {"guild": guild_id},
        )
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(EXPORT_COLUMNS)
        writer.writerows(tuple(row) for row in rows)
        return out.getvalue()

    async def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: "ok" for a healthy file, otherwise the problems found."""
        rows = await self._fetch("PRAGMA integrity_check")
        return "\n".join(row[0] for row in rows)
