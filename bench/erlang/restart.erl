%% restart.erl -- the "restart" benchmark of ../../shared/BENCH.md in Erlang/OTP,
%% for comparison with `xoscar-bench restart N`.
%%
%% A one_for_one supervisor runs one permanent gen_server worker. Each
%% incarnation's init/1 tells the driver {started, Incarnation, self()}; the
%% driver checks it is the next one and sends it `crash`, on which the worker
%% exits abnormally; the supervisor restarts it. N restarts are timed with
%% erlang:monotonic_time from the first crash to the N-th incarnation's report.
%%
%% The supervisor's intensity is N + 1 over Period seconds (default 3600), so
%% it is never reached. OTP keeps the restart times of the period in a list
%% that every restart copies (supervisor:add_restart/3), so with a long period
%% the cost of a restart grows with the restarts done so far.
%%
%% Run:   escript bench/erlang/restart.erl N [Period] [quiet|default]
%% quiet (the default) turns logging off, as xoscar-bench prints nothing per
%% crash; `default` keeps OTP's logger, which formats and prints an error
%% report, a crash report and a supervisor report on every restart.
-module(restart).
-mode(compile).
-behaviour(supervisor).
%% (also the callback module of the gen_server worker: one file, one module)

-export([main/1]).
-export([init/1, start_worker/2]).
-export([handle_call/3, handle_cast/2, handle_info/2]).

main(Args) ->
    {N, Period, Log} = parse(Args),
    Log =:= quiet andalso logger:set_primary_config(level, none),
    Counter = atomics:new(1, []),
    Flags = #{strategy => one_for_one, intensity => N + 1, period => Period},
    Child = #{id => worker,
              start => {?MODULE, start_worker, [self(), Counter]},
              restart => permanent},
    {ok, Sup} = supervisor:start_link(?MODULE, {sup, Flags, Child}),
    First = receive {started, 0, P0} -> P0 after 5000 -> fail("no worker") end,
    T0 = erlang:monotonic_time(),
    First ! crash,
    drive(1, N),
    T1 = erlang:monotonic_time(),
    atomics:get(Counter, 1) =:= N + 1 orelse fail("not every restart counted"),
    unlink(Sup),
    exit(Sup, shutdown),
    S = erlang:convert_time_unit(T1 - T0, native, nanosecond) / 1.0e9,
    io:format("RESULT name=restart peer=erlang ops=~b seconds=~.6f rate=~b "
              "extra=us_per_restart=~.3f,period_s=~b,log=~s,otp=~s,"
              "schedulers=~b~n",
              [N, S, round(N / S), S * 1.0e6 / N, Period, Log,
               erlang:system_info(otp_release),
               erlang:system_info(schedulers_online)]).

%% Incarnation I has been asked for; wait for its report, crash it again.
drive(I, N) ->
    receive
        {started, I, Pid} when I =:= N -> Pid;
        {started, I, Pid} -> Pid ! crash, drive(I + 1, N);
        {started, J, _} -> fail(io_lib:format("incarnation ~b out of turn "
                                              "(expected ~b)", [J, I]))
    after 10000 -> fail(io_lib:format("incarnation ~b never reported", [I]))
    end.

parse([N]) -> parse([N, "3600"]);
parse([N, P]) -> parse([N, P, "quiet"]);
parse([N, P, L]) when L =:= "quiet"; L =:= "default" ->
    {list_to_integer(N), list_to_integer(P), list_to_atom(L)};
parse(_) ->
    io:format(standard_error,
              "usage: escript restart.erl N [Period] [quiet|default]~n", []),
    halt(2).

fail(Why) ->
    io:format(standard_error, "restart: ~s~n", [Why]),
    halt(1).

%% The supervisor.
init({sup, Flags, Child}) -> {ok, {Flags, [Child]}};
%% The worker.
init({worker, Driver, Counter}) ->
    Incarnation = atomics:add_get(Counter, 1, 1) - 1,
    Driver ! {started, Incarnation, self()},
    {ok, Driver}.

start_worker(Driver, Counter) ->
    gen_server:start_link(?MODULE, {worker, Driver, Counter}, []).

handle_info(crash, _) -> exit(crash_requested);
handle_info(_, S) -> {noreply, S}.

handle_call(_, _, S) -> {reply, ok, S}.
handle_cast(_, S) -> {noreply, S}.
