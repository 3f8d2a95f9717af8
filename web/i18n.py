"""The pages' words in English and 简体中文, chosen from the browser's language (``Accept-Language``), as the bot's
replies follow the member's Discord locale.

    lang = language_of(request.headers.get("Accept-Language"))   # "en" or "zh"
    text(lang, "results", n=3)                                     # "3 results" / "3 个作品"

A key missing in Chinese falls back to English; a key missing in both is a bug (KeyError, found by the tests).
"""

from __future__ import annotations

EN, ZH = "en", "zh"
LANGS = (EN, ZH)

STRINGS: dict[str, dict[str, str]] = {
    # the frame
    "log_out": {EN: "Log out", ZH: "退出登录"},
    "footer": {EN: "Muse · pictures, poems and morphs that learn what each server likes",
               ZH: "Muse · 会学习每个服务器喜好的图画、诗歌和渐变"},
    # the front page
    "your_servers": {EN: "Your servers", ZH: "你的服务器"},
    "manage_server": {EN: "Manage Server", ZH: "管理服务器"},
    "no_servers": {EN: "You share no server with Muse yet. Ask Muse for something there ({commands}) and its "
                       "gallery appears here.",
                   ZH: "你还没有和 Muse 同在的服务器。在那里让 Muse 创作点什么（{commands}），作品页就会出现在这里。"},
    "front_title": {EN: "Everything Muse made in your servers", ZH: "Muse 在你的服务器里创作的一切"},
    "front_intro": {EN: "Log in with Discord to browse the pictures, morphs and poems of the servers you share with "
                        "Muse.",
                    ZH: "用 Discord 登录，浏览你和 Muse 同在的服务器里的图画、渐变和诗歌。"},
    "log_in": {EN: "Log in with Discord", ZH: "用 Discord 登录"},
    "setup_title": {EN: "Log in is not set up yet", ZH: "登录还没有设置"},
    "setup_intro": {EN: "The owner of this Muse sets it up in three steps:", ZH: "这个 Muse 的主人分三步设置："},
    "setup_1": {EN: "In the Discord Developer Portal, open the application, then OAuth2, and add the redirect",
                ZH: "在 Discord 开发者门户打开这个应用，进入 OAuth2，添加重定向地址"},
    "setup_2": {EN: "Put its Client ID in {setting} (in {file}, or {env}).",
                ZH: "把它的 Client ID 写进 {setting}（在 {file} 里，或用 {env}）。"},
    "setup_3": {EN: "Put its Client Secret in the environment as {env} (never in a file), and restart Muse.",
                ZH: "把它的 Client Secret 放进环境变量 {env}（不要写进文件），然后重启 Muse。"},
    # the gallery
    "public_gallery": {EN: "public gallery", ZH: "公开作品页"},
    "f_kind": {EN: "Kind", ZH: "种类"},
    "f_order": {EN: "Order", ZH: "排序"},
    "f_made": {EN: "Made", ZH: "时间"},
    "show": {EN: "Show", ZH: "显示"},
    "kind_all": {EN: "all", ZH: "全部"},
    "kind_image": {EN: "image", ZH: "图画"},
    "kind_morph": {EN: "morph", ZH: "渐变"},
    "kind_poem": {EN: "poem", ZH: "诗歌"},
    "kind_morph-poem": {EN: "poem morph", ZH: "诗歌渐变"},
    "sort_new": {EN: "newest", ZH: "最新"},
    "sort_top": {EN: "most liked", ZH: "最受喜爱"},
    "period_week": {EN: "this week", ZH: "本周"},
    "period_month": {EN: "this month", ZH: "本月"},
    "period_all": {EN: "ever", ZH: "全部时间"},
    "results": {EN: "{n} results", ZH: "{n} 个作品"},
    "results_1": {EN: "1 result", ZH: "1 个作品"},
    "page_of": {EN: "page {page} of {pages}", ZH: "第 {page} 页，共 {pages} 页"},
    "nothing_here": {EN: "Nothing here yet: try another filter, or ask Muse for something in the server.",
                     ZH: "这里还什么都没有：换个筛选条件，或者在服务器里让 Muse 创作点什么。"},
    "newer": {EN: "← newer", ZH: "← 较新"},
    "older": {EN: "older →", ZH: "较早 →"},
    "group_sessions": {EN: "Group sessions", ZH: "群体创作"},
    "session_title_image": {EN: "An image session", ZH: "一场图画群体创作"},
    "session_title_poem": {EN: "A poem session", ZH: "一场诗歌群体创作"},
    "on_theme": {EN: " on {theme}", ZH: "：{theme}"},
    "n_rounds": {EN: "{n} rounds", ZH: "{n} 轮"},
    "status_running": {EN: "running", ZH: "进行中"},
    "status_paused": {EN: "paused", ZH: "已暂停"},
    "status_finished": {EN: "finished", ZH: "已结束"},
    "status_stopped": {EN: "stopped", ZH: "已停止"},
    "status_abandoned": {EN: "abandoned", ZH: "已放弃"},
    "status_failed": {EN: "failed", ZH: "出错结束"},
    # a result
    "result_n": {EN: "result {n}", ZH: "作品 {n}"},
    "votes": {EN: "Votes", ZH: "投票"},
    "seed": {EN: "Seed", ZH: "种子"},
    "model": {EN: "Model", ZH: "模型"},
    "made_at": {EN: "Made", ZH: "创作于"},
    "make_again": {EN: "Make it again", ZH: "再做一次"},
    "open_in_discord": {EN: "Open it in Discord", ZH: "在 Discord 中打开"},
    "made_from": {EN: "Made from", ZH: "来自"},
    "made_from_it": {EN: "Made from it", ZH: "由它而来"},
    # a session
    "session_n": {EN: "session {n}", ZH: "群体创作 {n}"},
    "rounds_of": {EN: "{done} of {rounds} rounds", ZH: "已进行 {done} / {rounds} 轮"},
    "started": {EN: "started {when} UTC", ZH: "开始于 {when}（UTC）"},
    "winner_title": {EN: "The winner and its line of descent", ZH: "胜出作品和它的演化路线"},
    "round_idx": {EN: "round {round} · #{idx}", ZH: "第 {round} 轮 · #{idx}"},
    "credits": {EN: "Voted for along the way by {names}.", ZH: "一路为它投票的有：{names}。"},
    "you": {EN: "you", ZH: "你"},
    "a_member": {EN: "a member", ZH: "一位成员"},
    "no_winner": {EN: "This session ended without a winner: nobody voted in its last round.",
                  ZH: "这场群体创作没有胜出作品：最后一轮没有人投票。"},
    "round_title": {EN: "Round {n}", ZH: "第 {n} 轮"},
    "voters": {EN: "{n} voters", ZH: "{n} 人投票"},
    "voters_1": {EN: "1 voter", ZH: "1 人投票"},
    "voting_now": {EN: "voting now (tallies when it closes)", ZH: "投票中（结束后公布票数）"},
    "n_votes": {EN: "{n} votes", ZH: "{n} 票"},
    "n_votes_1": {EN: "1 vote", ZH: "1 票"},
    # errors: the title, then the sentence
    "t_login_needed": {EN: "Please log in", ZH: "请先登录"},
    "t_not_found": {EN: "Not found", ZH: "找不到"},
    "t_not_your_server": {EN: "Not your server", ZH: "不是你的服务器"},
    "t_slow_down": {EN: "Slow down", ZH: "慢一点"},
    "t_other": {EN: "Something is not right", ZH: "出了点问题"},
    "e_login_needed": {EN: "This page is for members of the server it shows. Log in with Discord (again, if your "
                           "login has expired).",
                       ZH: "这个页面只给它所属服务器的成员看。请用 Discord 登录（如果登录已过期，请重新登录）。"},
    "e_not_found": {EN: "There is no {name} here that you can see: it does not exist, or it belongs to a server you "
                        "are not in.",
                    ZH: "这里没有你能看到的{name}：它不存在，或者属于你不在的服务器。"},
    "name_page": {EN: "page", ZH: "页面"},
    "name_server": {EN: "server", ZH: "服务器"},
    "name_result": {EN: "result", ZH: "作品"},
    "name_session": {EN: "session", ZH: "群体创作"},
    "name_file": {EN: "file", ZH: "文件"},
    "e_no_such_page": {EN: "There is no page at this address.", ZH: "这个地址没有页面。"},
    "e_not_your_server": {EN: "You are not in this server, or Muse is not. Pick one of your servers on the front "
                              "page.",
                          ZH: "你不在这个服务器里，或者 Muse 不在。请在首页选择你的服务器。"},
    "e_bad_filter": {EN: "“{value}” is not a {name} I know: use one of {allowed}.",
                     ZH: "“{value}”不是可用的 {name}：请用 {allowed} 之一。"},
    "e_bad_number": {EN: "The {name} must be a whole number from {low} to {high}.",
                     ZH: "{name} 必须是 {low} 到 {high} 之间的整数。"},
    "e_past_the_end": {EN: "There is no page {page}: this gallery has {pages} pages.",
                       ZH: "没有第 {page} 页：这个作品页共有 {pages} 页。"},
    "e_past_the_end_1": {EN: "There is no page {page}: this gallery has 1 page.",
                         ZH: "没有第 {page} 页：这个作品页只有 1 页。"},
    "e_csrf": {EN: "This form is out of date (or was not sent from Muse's page). Reload the page and try again.",
               ZH: "这个表单已过期（或者不是从 Muse 的页面提交的）。请刷新页面再试一次。"},
    "e_bad_state": {EN: "This login link is out of date. Start again from the front page.",
                    ZH: "这个登录链接已过期。请从首页重新开始。"},
    "e_login_cancelled": {EN: "The login was cancelled on Discord. You can try again from the front page.",
                          ZH: "登录在 Discord 上被取消了。你可以从首页再试一次。"},
    "e_oauth_failed": {EN: "Discord did not let the login through: {detail}. Try again in a minute.",
                       ZH: "Discord 没有让登录通过：{detail}。请过一分钟再试。"},
    "e_login_off": {EN: "Log in is not set up on this Muse yet; the front page says how.",
                    ZH: "这个 Muse 还没有设置登录；首页写了怎么设置。"},
    "e_busy": {EN: "Muse is busy drawing right now. Reload the page in a moment.",
               ZH: "Muse 正忙着画画。请稍后刷新页面。"},
    "e_no_engine": {EN: "Pictures are not drawn here: this page server has no models loaded.",
                    ZH: "这里不画图：这个网页服务没有加载模型。"},
    "e_slow_down": {EN: "Too many requests in a minute. Try again in {seconds} seconds.",
                    ZH: "一分钟内的请求太多了。请 {seconds} 秒后再试。"},
    "e_too_large": {EN: "That form is too large.", ZH: "这个表单太大了。"},
    "e_method": {EN: "This address does not take that kind of request.", ZH: "这个地址不接受这种请求。"},
    "e_unexpected": {EN: "Something went wrong on Muse's side (error id {error_id}). The owner can find it in the log.",
                     ZH: "Muse 这边出错了（错误编号 {error_id}）。主人可以在日志里找到它。"},
    "e_http": {EN: "{reason}", ZH: "{reason}"},
    "front_page": {EN: "Front page", ZH: "首页"},
}


def language_of(accept_language: str | None) -> str:
    """"zh" when the browser's first language Muse speaks is Chinese (zh, zh-CN, zh-Hans…), else "en"."""
    best = (0.0, EN)
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            weight = 0.0
        lang = tag.split("-")[0].lower()
        if lang in LANGS and weight > best[0]:
            best = (weight - i * 1e-6, lang)  # the earlier of two equal weights
    return best[1]


def text(lang: str, key: str, n: int | None = None, **values) -> str:
    """The words of ``key`` in ``lang``; with ``n``, the singular ``key_1`` when n is 1 (where there is one)."""
    if n is not None:
        values["n"] = n
        if n == 1 and f"{key}_1" in STRINGS:
            key = f"{key}_1"
    entry = STRINGS[key]
    return (entry.get(lang) or entry[EN]).format(**values)


__all__ = ["LANGS", "STRINGS", "language_of", "text"]
