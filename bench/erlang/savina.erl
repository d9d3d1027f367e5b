%% savina.erl -- the Savina benchmarks of shared/BENCH.md in Erlang/OTP
%%! +P 2097152
%% for comparison with xoscar-bench in the same run (bench/compare-peers.sh).
%%
%% Run:   escript bench/erlang/savina.erl NAME [ARGS...]
%%   or, compiled once (erlc): erl +P 2097152 -noshell -pa DIR
%%                             -run savina main NAME [ARGS...] -s init stop
%%
%% NAME and ARGS are xoscar-bench's, with its defaults: pingpong
%% round_trips=1e6, threadring hops=1e7 ring=1000, fanin per_sender=5e6
%% senders=2, forkjoin per_worker=2e5 workers=60, spawn actors=1e6
%% window=1000, spawn_burst actors=5e4 window=0, counting messages=1e7.
%% Each run checks what it computed (the same checks as the C benchmarks of
%% bench/), exits 1 when it is wrong, 3 when the measured part hangs for
%% 300 s, 2 on bad arguments, and prints one line in xoscar-bench's format
%% with peer=erlang.
%%
%% Every actor is a plain process with a receive loop, as an Erlang
%% programmer writes it; messages are sent with `!`. The measured part is
%% xoscar's: the main process reads erlang:monotonic_time, sends the
%% kick-off, and waits in receive for the completion message. Spawning and
%% wiring happen before it (except in the spawn benchmarks, where spawning
%% is what is measured); the VM's halt ends the processes after it.
%%
%% The process limit (+P, second line above: 2 Mi processes) must exceed the
%% spawn benchmarks' children; OTP's default, 262144, is below spawn's 1e6.
%% The limit sizes a table the VM allocates at start, outside the measured
%% part, but it adds to the resident memory (about 22 MB at 2 Mi), so
%% compare-peers.sh asks for no more than each run needs. The schedulers
%% are OTP's default, one per core.
-module(savina).
-mode(compile).

-export([main/1]).

-define(HANG_MS, 300000).

main([Name | Args]) ->
    case lists:keyfind(Name, 1, benches()) of
        {Name, Fun, Defaults} ->
            Sizes = sizes(Name, Args, Defaults),
            {Ops, Seconds, Extra} = Fun(Sizes),
            report(Name, Ops, Seconds, Extra);
        false ->
            usage("no benchmark named " ++ Name)
    end;
main([]) ->
    usage("name a benchmark").

%% name, fun, [{argument, default, minimum}]
benches() ->
    [{"pingpong", fun pingpong/1, [{round_trips, "1e6", 1}]},
     {"threadring", fun threadring/1, [{hops, "1e7", 1}, {ring, "1000", 1}]},
     {"fanin", fun fanin/1, [{per_sender, "5e6", 1}, {senders, "2", 1}]},
     {"forkjoin", fun forkjoin/1,
      [{per_worker, "2e5", 1}, {workers, "60", 1}]},
     {"spawn", fun spawn_windowed/1, [{actors, "1e6", 1}, {window, "1000", 0}]},
     {"spawn_burst", fun spawn_burst/1, [{actors, "5e4", 1}, {window, "0", 0}]},
     {"counting", fun counting/1, [{messages, "1e7", 1}]}].

%% The positional sizes, else the defaults: whole numbers written as
%% 1000000 or 1e6, as xoscar-bench takes them.
sizes(Name, Args, Defaults) when length(Args) > length(Defaults) ->
    usage(io_lib:format("~s takes at most ~b arguments",
                        [Name, length(Defaults)]));
sizes(Name, Args, Defaults) ->
    Words = Args ++ [D || {_, D, _} <- lists:nthtail(length(Args), Defaults)],
    [size(Name, Arg, W, Min)
     || {W, {Arg, _, Min}} <- lists:zip(Words, Defaults)].

size(Name, Arg, Word, Min) ->
    case number(Word) of
        N when is_integer(N), N >= Min, N =< 1000000000000 -> N;
        _ -> usage(io_lib:format("~s: bad ~s: ~s", [Name, Arg, Word]))
    end.

number(Word) ->
    case string:to_integer(Word) of
        {N, ""} -> N;
        _ ->
            %% 1e6: Erlang's floats want a fraction (1.0e6), so add one.
            case string:to_float(re:replace(Word, "^([0-9]+)([eE])", "\\1.0\\2",
                                            [{return, list}])) of
                {F, ""} when F == trunc(F) -> trunc(F);
                _ -> bad
            end
    end.

usage(Why) ->
    io:format(standard_error, "savina: ~s~nusage: savina NAME [ARGS...]~n",
              [Why]),
    [io:format(standard_error, "  ~-12s~s~n",
               [N, [io_lib:format(" ~s=~s", [A, D]) || {A, D, _} <- Ds]])
     || {N, _, Ds} <- benches()],
    halt(2).

report(Name, Ops, Seconds, Extra) ->
    All = Extra ++ [{peak_rss_kib, status_kib("VmHWM")},
                    {workers, erlang:system_info(schedulers_online)},
                    {otp, erlang:system_info(otp_release)},
                    {emu, atom_to_list(erlang:system_info(emu_flavor))}],
    io:format("RESULT name=~s peer=erlang ops=~b seconds=~.6f rate=~b "
              "extra=~s~n",
              [Name, Ops, Seconds, round(Ops / Seconds),
               lists:join(",", [io_lib:format("~s=~s", [K, value(V)])
                                || {K, V} <- All])]),
    halt(0).

value(V) when is_integer(V) -> integer_to_list(V);
value({fixed, V, Digits}) -> float_to_list(float(V), [{decimals, Digits}]);
value(V) -> V.

fail(Why) ->
    io:format(standard_error, "~s~n", [Why]),
    halt(1).

%% A field of /proc/self/status in KiB (VmRSS, VmHWM), 0 if unreadable.
status_kib(Field) ->
    case file:read_file("/proc/self/status") of
        {ok, Bin} ->
            Re = "^" ++ Field ++ ":\\s*([0-9]+)",
            case re:run(Bin, Re, [multiline, {capture, [1], list}]) of
                {match, [Kib]} -> list_to_integer(Kib);
                nomatch -> 0
            end;
        _ -> 0
    end.

%% The measured part: the clock, the kick-off to each of Pids, the clock
%% when Done completion messages {done, Result} have come; the results in
%% the order they came. {fail, Why} from an actor fails the run.
measure(Name, Pids, Done) ->
    T0 = erlang:monotonic_time(),
    [P ! kick || P <- Pids],
    Results = await(Name, Done, []),
    T1 = erlang:monotonic_time(),
    {erlang:convert_time_unit(T1 - T0, native, nanosecond) / 1.0e9, Results}.

await(_, 0, Acc) -> lists:reverse(Acc);
await(Name, N, Acc) ->
    receive
        {done, R} -> await(Name, N - 1, [R | Acc]);
        {fail, Why} -> fail(Name ++ ": " ++ Why)
    after ?HANG_MS ->
        io:format(standard_error, "~s: no completion after ~b s: hung~n",
                  [Name, ?HANG_MS div 1000]),
        halt(3)
    end.

check(_, true) -> ok;
check(Name, false) -> fail(Name).

%% ---- pingpong -----------------------------------------------------------
%% ping sends n to pong, pong echoes it, ping checks the echo and sends n + 1.

pingpong([Rounds]) ->
    Main = self(),
    Pong = spawn_link(fun pong/0),
    Ping = spawn_link(fun() -> receive kick -> ping(Pong, 0, Rounds, Main) end
                      end),
    {S, [Echoed]} = measure("pingpong", [Ping], 1),
    check("pingpong: fewer echoes than round trips", Echoed =:= Rounds),
    {Rounds, S, [{ns_per_rt, {fixed, S * 1.0e9 / Rounds, 1}}]}.

pong() ->
    receive {ball, From, N} -> From ! {ball, N}, pong() end.

%% Sent is the value of the ball in flight, and the round trips done so far.
ping(Pong, Sent, Rounds, Main) ->
    Pong ! {ball, self(), Sent},
    receive
        {ball, Sent} when Sent + 1 =:= Rounds -> Main ! {done, Sent + 1};
        {ball, Sent} -> ping(Pong, Sent + 1, Rounds, Main);
        {ball, _} -> Main ! {fail, "the echo differs from the ball"}
    end.

%% ---- threadring ---------------------------------------------------------
%% A token with the hops left goes around the ring, decremented at each
%% node; the node that receives 0 reports its index: hops rem ring.

threadring([Hops, Size]) ->
    Main = self(),
    Nodes = [spawn_link(fun() -> node(I, Hops, Main) end)
             || I <- lists:seq(0, Size - 1)],
    [N ! {next, Next}
     || {N, Next} <- lists:zip(Nodes, tl(Nodes) ++ [hd(Nodes)])],
    [receive wired -> ok end || _ <- Nodes],
    {S, [Last]} = measure("threadring", [hd(Nodes)], 1),
    check("threadring: the token ended at the wrong node",
          Last =:= Hops rem Size),
    {Hops, S, [{ring, Size}, {ns_per_hop, {fixed, S * 1.0e9 / Hops, 1}}]}.

node(I, Hops, Main) ->
    receive {next, Next} -> Main ! wired, node_loop(I, Hops, Next, Main) end.

%% The kick-off starts the token at node 0 with all the hops to go.
node_loop(I, Hops, Next, Main) ->
    receive
        kick -> token(I, Hops, Next, Main, Hops);
        {token, Left} -> token(I, Hops, Next, Main, Left)
    end.

token(I, _, _, Main, 0) -> Main ! {done, I};
token(I, Hops, Next, Main, Left) ->
    Next ! {token, Left - 1},
    node_loop(I, Hops, Next, Main).

%% ---- fanin --------------------------------------------------------------
%% Each sender sends {Id, Seq} for Seq = 0 .. PerSender-1 in one loop to one
%% receiver, which checks every sender's sequence arrives in order.

fanin([PerSender, Senders]) ->
    Main = self(),
    Total = PerSender * Senders,
    Next = maps:from_list([{Id, 0} || Id <- lists:seq(0, Senders - 1)]),
    Receiver = spawn_link(fun() -> receiver(Next, 0, Total, Main) end),
    Pids = [spawn_link(fun() ->
                           receive kick -> items(Receiver, Id, 0, PerSender) end
                       end)
            || Id <- lists:seq(0, Senders - 1)],
    {S, [{Received, Seqs}]} = measure("fanin", Pids, 1),
    check("fanin: messages were lost",
          Received =:= Total andalso
          lists:all(fun(Seq) -> Seq =:= PerSender end, maps:values(Seqs))),
    {Total, S, [{senders, Senders}]}.

items(_, _, N, N) -> ok;
items(Receiver, Id, Seq, N) ->
    Receiver ! {Id, Seq},
    items(Receiver, Id, Seq + 1, N).

receiver(Next, Total, Total, Main) -> Main ! {done, {Total, Next}};
receiver(Next, Received, Total, Main) ->
    receive
        {Id, Seq} ->
            case Next of
                #{Id := Seq} ->
                    receiver(Next#{Id := Seq + 1}, Received + 1, Total, Main);
                #{Id := _} ->
                    Main ! {fail, "a sender's messages out of order"};
                _ ->
                    Main ! {fail, "a message from no known sender"}
            end
    end.

%% ---- forkjoin -----------------------------------------------------------
%% A driver loops I = 0 .. PerWorker-1 sending I to every worker; each
%% worker adds I and sin(I)^2, and reports its sums after its last message.

forkjoin([PerWorker, NWorkers]) ->
    Main = self(),
    Workers = [spawn_link(fun() -> worker(W, PerWorker, Main, 0, 0, 0.0) end)
               || W <- lists:seq(0, NWorkers - 1)],
    Driver = spawn_link(fun() -> receive kick -> fj_send(0, PerWorker, Workers)
                                 end end),
    {S, Filed} = measure("forkjoin", [Driver], NWorkers),
    {Count, Sum, FSum} = sums(0, PerWorker, 0, 0, 0.0),
    [{_, _, _, FSum0} | _] = Filed,
    check("forkjoin: a worker missed messages",
          lists:sort([W || {W, _, _, _} <- Filed]) =:=
              lists:seq(0, NWorkers - 1) andalso
          lists:all(fun({_, C, Su, _}) -> C =:= Count andalso Su =:= Sum end,
                    Filed)),
    %% Bit for bit: every worker added the same terms in the same order.
    check("forkjoin: float sums differ between workers",
          lists:all(fun({_, _, _, F}) -> F =:= FSum0 end, Filed)),
    check("forkjoin: float sums differ from the expected",
          abs(FSum0 - FSum) =< 1.0e-9 * (1 + abs(FSum))),
    {PerWorker * NWorkers, S, [{worker_actors, NWorkers}]}.

fj_send(N, N, _) -> ok;
fj_send(I, N, Workers) ->
    send_all(Workers, I),
    fj_send(I + 1, N, Workers).

send_all([], _) -> ok;
send_all([W | Ws], I) -> W ! I, send_all(Ws, I).

worker(W, N, Main, N, Sum, FSum) -> Main ! {done, {W, N, Sum, FSum}};
worker(W, N, Main, Count, Sum, FSum) ->
    receive
        I ->
            X = math:sin(I),
            worker(W, N, Main, Count + 1, Sum + I, FSum + X * X)
    end.

sums(N, N, Count, Sum, FSum) -> {Count, Sum, FSum};
sums(I, N, Count, Sum, FSum) ->
    X = math:sin(I),
    sums(I + 1, N, Count + 1, Sum + I, FSum + X * X).

%% ---- spawn, spawn_burst -------------------------------------------------
%% A driver spawns children; each says hello to the driver when it starts
%% and stays alive. Window > 0: at most Window children spawned and not yet
%% heard from; Window = 0: all spawned in one loop.

spawn_windowed(Sizes) -> spawns("spawn", Sizes).
spawn_burst(Sizes) -> spawns("spawn_burst", Sizes).

spawns(Name, [Actors, Window]) ->
    Main = self(),
    Limit = erlang:system_info(process_limit),
    Actors + erlang:system_info(process_count) + 100 < Limit orelse
        fail(io_lib:format("~s: ~b children exceed the process limit ~b "
                           "(raise +P)", [Name, Actors, Limit])),
    Driver = spawn_link(fun() -> receive kick -> ok end,
                                 First = case Window of 0 -> Actors;
                                                        _ -> min(Window, Actors)
                                         end,
                                 spawner(First, 0, Actors, Window, Main) end),
    Before = erlang:system_info(process_count),
    RssBefore = status_kib("VmRSS"),
    {S, [Hellos]} = measure(Name, [Driver], 1),
    Peak = status_kib("VmHWM"),
    Alive = erlang:system_info(process_count) - Before,
    check(Name ++ ": hellos missing", Hellos =:= Actors),
    check(Name ++ ": children not alive at the end", Alive =:= Actors),
    {Actors, S, [{window, Window},
                 {bytes_per_actor,
                  {fixed, max(Peak - RssBefore, 0) * 1024 / Actors, 0}}]}.

%% Spawn N more children (fewer if Actors are reached), then wait for hellos.
spawner(N, Spawned, Actors, Window, Main) when N > 0, Spawned < Actors ->
    Self = self(),
    spawn(fun() -> child(Self) end),
    spawner(N - 1, Spawned + 1, Actors, Window, Main);
spawner(_, Spawned, Actors, Window, Main) ->
    hellos(0, Spawned, Actors, Window, Main).

hellos(Hellos, Spawned, Actors, Window, Main) ->
    receive
        hello when Hellos + 1 =:= Actors ->
            Main ! {done, Hellos + 1},
            receive stop -> ok end; % alive to the end, as its children
        hello when Window > 0, Spawned < Actors ->
            Self = self(),
            spawn(fun() -> child(Self) end),
            hellos(Hellos + 1, Spawned + 1, Actors, Window, Main);
        hello -> hellos(Hellos + 1, Spawned, Actors, Window, Main)
    end.

child(Driver) ->
    Driver ! hello,
    receive stop -> ok end.

%% ---- counting -----------------------------------------------------------
%% A producer sends increments in one loop, then asks for the value, which
%% must equal the number of increments.

counting([Messages]) ->
    Main = self(),
    Counter = spawn_link(fun() -> counter(0) end),
    Producer = spawn_link(fun() ->
                              receive kick -> ok end,
                              produce(Counter, Messages, Main)
                          end),
    {S, [Value]} = measure("counting", [Producer], 1),
    check("counting: no reply with the count", Value =:= Messages),
    {Messages, S, []}.

counter(V) ->
    receive
        inc -> counter(V + 1);
        {get, From} -> From ! {value, V}, counter(V)
    end.

produce(Counter, Messages, Main) ->
    incs(Counter, Messages),
    Counter ! {get, self()},
    receive
        {value, Messages} -> Main ! {done, Messages};
        {value, _} -> Main ! {fail, "the counter has the wrong value"}
    end.

incs(_, 0) -> ok;
incs(Counter, N) -> Counter ! inc, incs(Counter, N - 1).
